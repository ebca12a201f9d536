"""Timing figures for the lab and the tiers: `python bench/run.py [--repeat N]`.

Prints, for this machine: the lab's `down` + `up` to all-healthy (base image
present), and the wall time of `pytest -m emergency` and `pytest -m daily`
against the healthy lab. Targets (lab up under 60 s) are judged by reading
these figures, never by a timed assertion in a test.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(cmd: list[str], env: dict) -> float:
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode not in (0,):
        sys.exit(f"{' '.join(cmd)} failed (exit {done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    env = dict(os.environ)
    env.setdefault("NAUTILUS_POSTGRES_PASSWORD_FILE", str(ROOT / "lab" / ".state" / "postgres-password"))
    lab = [sys.executable, "-m", "lab"]
    checks = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--inventory=lab/inventory.yaml",
              "--html=/dev/null", "--alluredir=/tmp/nautilus-bench-allure"]
    timed(lab + ["up"], env)  # builds the image if missing: not part of the figures
    figures: dict[str, list[float]] = {"lab down": [], "lab up (to all healthy)": [],
                                       "pytest -m emergency": [], "pytest -m daily": [], "pytest -m daily -n 2": []}
    for _ in range(args.repeat):
        figures["lab down"].append(timed(lab + ["down"], env))
        figures["lab up (to all healthy)"].append(timed(lab + ["up"], env))
        figures["pytest -m emergency"].append(timed(checks + ["-m", "emergency"], env))
        figures["pytest -m daily"].append(timed(checks + ["-m", "daily"], env))
        figures["pytest -m daily -n 2"].append(timed(checks + ["-m", "daily", "-n", "2"], env))
    print(f"{'step':28} {'median s':>9} {'min s':>7} {'max s':>7}   ({args.repeat} runs, {os.cpu_count()} CPUs)")
    for step, values in figures.items():
        print(f"{step:28} {statistics.median(values):9.2f} {min(values):7.2f} {max(values):7.2f}")


if __name__ == "__main__":
    main()
