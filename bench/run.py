"""Timing figures for the tiers on the lab: `python bench/run.py [--repeat N] [--lab-cycle]`.

Prints, for this machine, the wall time of `pytest -m emergency`, `-m daily`
and `-m weekly` against the running lab (medians of N runs), with each run's
outcome, and with `--lab-cycle` the lab's `down` and `up` to all-healthy.
Targets (daily under 6 s, weekly under 40 s, lab up under 60 s) are judged by
reading these figures, never by a timed assertion in a test.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(cmd: list[str], env: dict, must_pass: bool = True) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    summary = (re.findall(r"^=*\s*(\d+ \w.*?) in [\d.]+s", done.stdout, re.M) or [f"exit {done.returncode}"])[-1]
    if must_pass and done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed (exit {done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return elapsed, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--lab-cycle", action="store_true", help="also time lab down and lab up")
    args = parser.parse_args()
    env = dict(os.environ)
    env.setdefault("NAUTILUS_POSTGRES_PASSWORD_FILE", str(ROOT / "lab" / ".state" / "postgres-password"))
    lab = [sys.executable, "-m", "lab"]
    checks = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--inventory=lab/inventory.yaml",
              "--html=/dev/null", "--alluredir=/tmp/nautilus-bench-allure"]
    timed(lab + ["up"], env)  # builds the image if missing: not part of the figures
    steps = {"pytest -m emergency": ["-m", "emergency"], "pytest -m daily": ["-m", "daily"],
             "pytest -m weekly": ["-m", "weekly"], "pytest -m daily -n 2": ["-m", "daily", "-n", "2"]}
    figures: dict[str, list[float]] = {step: [] for step in steps}
    outcomes: dict[str, str] = {}
    for _ in range(args.repeat):
        for step, extra in steps.items():
            seconds, outcomes[step] = timed(checks + extra, env, must_pass=False)
            figures[step].append(seconds)
    if args.lab_cycle:
        figures["lab down"] = [timed(lab + ["down"], env)[0]]
        figures["lab up (to all healthy)"] = [timed(lab + ["up"], env)[0]]
    print(f"{'step':26} {'median s':>9} {'min s':>7} {'max s':>7}   outcome of the last run "
          f"({args.repeat} runs, {os.cpu_count()} CPUs)")
    for step, values in figures.items():
        print(f"{step:26} {statistics.median(values):9.2f} {min(values):7.2f} {max(values):7.2f}   "
              f"{outcomes.get(step, '')}")


if __name__ == "__main__":
    main()
