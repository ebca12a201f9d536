"""`make report`: the Allure 3 HTML report of a tier's latest run, with trends across runs.

    python -m reports.allure_report                    # the newest daily run's results
    python -m reports.allure_report --tier emergency
    python -m reports.allure_report --results reports/out/daily-20261125-101500-a1b2c3-allure

Installs the pinned Allure 3 (reports/allure/package-lock.json) with `npm ci`
on first use, writes the build's config as `reports/out/<stem>-allurerc.mjs`
(categories, history, a single-file report so it opens from file:// as well
as from a web server), and generates `reports/out/<stem>-allure-report/`.
Each build appends to `reports/out/allure-history-<tier>.jsonl`, so trends span runs;
`reports/out/allure-latest-<tier>/index.html` is the newest report.
Exit 2 with one line when node/npm or the results are missing.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from filelock import FileLock

from observation.paths import OUT_DIR

from .allure_labels import CATEGORIES
from .run import parse_stem, shared_lock, write_atomically

ALLURE_DIR = Path(__file__).resolve().parent / "allure"
ALLURE_BIN = ALLURE_DIR / "node_modules" / ".bin" / "allure"
INSTALL_TIMEOUT_S = 600
GENERATE_TIMEOUT_S = 300


class Unavailable(Exception):
    """What stops a build before it starts, said in one line (exit 2)."""


def latest_results(out_dir: Path, tier: str) -> Path:
    """The newest `<tier>-<run id>-allure` folder; run ids start with the time, so they sort by age."""
    runs = [(parse_stem(p.name)[1], p) for p in out_dir.glob(f"{tier}-*-allure")
            if p.is_dir() and parse_stem(p.name) and parse_stem(p.name)[0] == tier]
    if not runs:
        raise Unavailable(f"no Allure results of tier {tier!r} in {out_dir}: run `pytest -m {tier}` first")
    return max(runs)[1]


def config_text(*, name: str, output: Path, history: Path) -> str:
    """allurerc.mjs: plain data, so JSON is valid JavaScript for it."""
    config = {
        "name": name,
        "output": str(output),
        "historyPath": str(history),
        "appendHistory": True,
        "categories": {"rules": CATEGORIES},
        "plugins": {"awesome": {"options": {"singleFile": True, "reportName": name, "groupBy": ["area", "engine"]}}},
    }
    return "// Written by python -m reports.allure_report for this build; edits are overwritten.\n" \
           f"export default {json.dumps(config, indent=2)};\n"


def ensure_allure() -> Path:
    if not (shutil.which("node") and shutil.which("npm")):
        raise Unavailable("node and npm are needed for the Allure report (Debian: apt-get install nodejs npm)")
    if not ALLURE_BIN.exists():
        print("installing the pinned Allure 3 (npm ci) into reports/allure/node_modules ...", flush=True)
        done = _run(["npm", "ci", "--no-audit", "--no-fund"], ALLURE_DIR, INSTALL_TIMEOUT_S)
        if done.returncode != 0 or not ALLURE_BIN.exists():
            raise RuntimeError(f"npm ci failed in {ALLURE_DIR}: {_last_line(done)}")
    return ALLURE_BIN


def build(results: Path, out_dir: Path, tier: str) -> tuple[Path, Path]:
    """Generates the report of one results folder; returns it and the stable copy of the tier's latest.

    A folder named like a run's gives the tier and run id; any other is reported under `tier`."""
    if not results.is_dir() or not any(results.glob("*-result.json")):
        raise Unavailable(f"no Allure results in {results}")
    tier, run_id = parse_stem(results.name) or (tier, "")
    stem = results.name.removesuffix("-allure") if run_id else f"{tier}-{results.name}"
    allure = ensure_allure()
    report_dir = out_dir / f"{stem}-allure-report"
    config = out_dir / f"{stem}-allurerc.mjs"
    history = out_dir / f"allure-history-{tier}.jsonl"
    name = f"Nautilus health: {tier}" + (f" ({run_id})" if run_id else "")
    config.write_text(config_text(name=name, output=report_dir, history=history), encoding="utf-8")
    # Builds of one tier take turns: each reads the history and appends its own entry. A lock of its own,
    # since generating takes seconds and the shared lock is kept short for the check runs' writers.
    with FileLock(str(out_dir / f".allure-history-{tier}.lock"), timeout=GENERATE_TIMEOUT_S):
        done = _run([str(allure), "generate", "--config", str(config), str(results)], out_dir, GENERATE_TIMEOUT_S)
    index = report_dir / "index.html"
    if done.returncode != 0 or not index.exists():
        raise RuntimeError(f"allure generate failed for {results}: {_last_line(done)}")
    latest = out_dir / f"allure-latest-{tier}" / "index.html"
    with shared_lock(out_dir):
        write_atomically(latest, index.read_bytes())  # a single file: the copy is the whole report
    return index, latest


def _run(cmd: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{Path(cmd[0]).name} {cmd[1]} took longer than {timeout:g} s") from None


def _last_line(done: subprocess.CompletedProcess) -> str:
    lines = (done.stderr or done.stdout or "").strip().splitlines()
    return lines[-1] if lines else f"exit code {done.returncode}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reports.allure_report", description=__doc__.splitlines()[0])
    parser.add_argument("--tier", default="daily", help="the tier whose newest run is reported (default: daily)")
    parser.add_argument("--results", type=Path, help="this Allure results folder instead of the tier's newest")
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR, help=f"the reports directory (default: {OUT_DIR})")
    args = parser.parse_args(argv)
    out_dir = args.out_dir.resolve()
    try:
        results = args.results.resolve() if args.results else latest_results(out_dir, args.tier)
        index, latest = build(results, out_dir, args.tier)
    except Unavailable as exc:
        print(f"allure report: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"allure report: {exc}", file=sys.stderr)
        return 1
    print(f"Allure report: {index}\nlatest {latest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
