"""`make report`: the Allure 3 HTML report of a tier's latest run, with trends across runs.

    python -m reports.allure_report                    # the newest daily run's results
    python -m reports.allure_report --tier emergency
    python -m reports.allure_report --results reports/out/daily-20261125-101500-a1b2c3-allure

Installs the pinned Allure 3 (reports/allure/package-lock.json) with `npm ci`
on first use, writes the build's config as `reports/out/<stem>-allurerc.mjs`
(categories, history, a single-file report so it opens from file:// as well
as from a web server), and generates `reports/out/<stem>-allure-report/`.
The report's name is the run's verdict (the `verdict` line of the results'
environment.properties), so the overview leads with the root causes and not
only with Allure's success rate, which leaves skipped results (blocked, in
maintenance) out; the page opens at its top, where that name is. Allure's
analytics tag is cut from the page: opened from file:// or a web server, the
report loads nothing from any other host.
Each build appends to `reports/out/allure-history-<tier>.jsonl`, so trends span runs;
`reports/out/allure-latest-<tier>/index.html` is the newest report.
Exit 2 with one line when node/npm or the results are missing.
"""
from __future__ import annotations

import argparse
import json
import os
import re
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
NAME_LIMIT = 300  # the overview's heading stays a few lines; the Metadata's verdict keeps the whole line

# Allure 3.18's awesome plugin writes Google's tag loader into every report (analyticsEnable is hard-coded) and has
# no option to leave it out (allure3 issue #476, PR #784 still open): a config key Allure does not know makes
# `generate` fail, and Allure 2's ALLURE_NO_ANALYTICS is honoured only by the allure2 plugin. So the block is cut
# from the generated page.
ANALYTICS = re.compile(r'<script async src="https://www\.googletagmanager\.com/gtag/js\?id=[^"]*"></script>\s*'
                       r'<script>(?:(?!</script>).)*?\bgtag\((?:(?!</script>).)*?</script>\s*', re.S)
# Whatever the page would still fetch by markup from a host. The single file's own parts are data: URLs, and the
# results are base64 inside them, so nothing a check reported can look like a tag here.
REMOTE_LOAD = re.compile(r'<(?:script|link|img|iframe|frame|embed|object|source|audio|video|track|image)\b[^>]*?'
                         r'\b(?:src|href|data|srcset|poster)\s*=\s*["\']?\s*((?:https?:)?//[^"\'\s>]*)', re.I)

# Allure 3.18 focuses the tree's first test once it renders and, when that row sits low in the window (a failing run
# on a laptop screen), scrolls it to the middle: the report's name, which is the verdict, leaves the first screen.
# Until the reader scrolls, types or clicks, the tree's pane stays at its top; a link to one test keeps its scroll.
FIRST_SCREEN = """<script>
(() => {
  if (location.hash.length > 2) return;
  let reading = false;
  for (const type of ["wheel", "keydown", "pointerdown", "touchstart"]) {
    addEventListener(type, () => { reading = true; }, {capture: true, passive: true});
  }
  addEventListener("scroll", (event) => {
    const pane = event.target;
    if (!reading && pane instanceof HTMLElement && pane.hasAttribute("data-tree-scroll-container")) pane.scrollTop = 0;
  }, {capture: true, passive: true});
})();
</script>
"""


class Unavailable(Exception):
    """What stops a build before it starts, said in one line (exit 2)."""


def latest_results(out_dir: Path, tier: str) -> Path:
    """The newest `<tier>-<run id>-allure` folder; run ids start with the time, so they sort by age."""
    runs = [(parse_stem(p.name)[1], p) for p in out_dir.glob(f"{tier}-*-allure")
            if p.is_dir() and parse_stem(p.name) and parse_stem(p.name)[0] == tier]
    if not runs:
        raise Unavailable(f"no Allure results of tier {tier!r} in {out_dir}: run `pytest -m {tier}` first")
    return max(runs)[1]


def properties(text: str) -> dict[str, str]:
    """A .properties file's keys and values, read as Java (and Allure) reads them.

    >>> properties("# a comment\\nverdict = 1 root cause (critical first)\\ntier:daily\\n")
    {'verdict': '1 root cause (critical first)', 'tier': 'daily'}
    """
    values: dict[str, str] = {}
    logical = ""
    for raw in text.splitlines():
        line = raw.lstrip() if not logical else raw.lstrip(" \t\f")
        if not logical and (not line or line[0] in "#!"):
            continue
        trailing = len(line) - len(line.rstrip("\\"))
        if trailing % 2:  # an odd run of backslashes continues the line
            logical += line[:-1]
            continue
        logical += line
        key = re.match(r"(?:[^\\=:\s]|\\.)*", logical).group(0)
        value = re.sub(r"^\s*[=:]?\s*", "", logical[len(key):], count=1)
        values[_unescape(key)] = _unescape(value)
        logical = ""
    return values


def _unescape(text: str) -> str:
    escapes = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}
    return re.sub(r"\\(u[0-9a-fA-F]{4}|.)",
                  lambda m: chr(int(m[1][1:], 16)) if len(m[1]) == 5 else escapes.get(m[1], m[1]), text)


def run_verdict(results: Path) -> str | None:
    """The run's verdict and first root causes, as the suite wrote them beside the results."""
    env = results / "environment.properties"
    if not env.is_file():
        return None
    return properties(env.read_text(encoding="utf-8", errors="replace")).get("verdict") or None


def report_name(tier: str, run_id: str, verdict: str | None) -> str:
    """The overview's heading (and the page's title): the verdict, since a lead reads that line first.

    >>> report_name("daily", "20261125-101500-a1b2c3", "1 root cause (critical first), 17 checks blocked by them")
    'Nautilus health daily: 1 root cause (critical first), 17 checks blocked by them'
    >>> report_name("daily", "20261125-101500-a1b2c3", None)
    'Nautilus health: daily (20261125-101500-a1b2c3)'
    """
    if not verdict:
        return f"Nautilus health: {tier}" + (f" ({run_id})" if run_id else "")
    name = f"Nautilus health {tier}: {' '.join(verdict.split())}"
    return name if len(name) <= NAME_LIMIT else name[:NAME_LIMIT - 1].rstrip() + "\u2026"


def offline(html: str) -> str:
    """The report's page without Allure's analytics tag; refused when it would still load anything from a host."""
    html = ANALYTICS.sub("", html, count=1)
    remote = REMOTE_LOAD.search(html)
    if remote:
        raise RuntimeError(f"the generated report would load {remote[1]}: not published, since it must open "
                           "without any other host (see ANALYTICS in reports/allure_report.py)")
    return html


def verdict_first(html: str) -> str:
    """The report's page opening at its top, where the verdict is (FIRST_SCREEN runs before Allure's own scripts)."""
    return html.replace("</head>", FIRST_SCREEN + "</head>", 1)


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
    name = report_name(tier, run_id, run_verdict(results))
    config.write_text(config_text(name=name, output=report_dir, history=history), encoding="utf-8")
    # Builds of one tier take turns: each reads the history and appends its own entry. A lock of its own,
    # since generating takes seconds and the shared lock is kept short for the check runs' writers.
    with FileLock(str(out_dir / f".allure-history-{tier}.lock"), timeout=GENERATE_TIMEOUT_S):
        # The opt-out Allure 2 honours and the pending Allure 3 option reads as well: once a release honours it,
        # the page comes without the tag and `offline` finds nothing to cut.
        done = _run([str(allure), "generate", "--config", str(config), str(results)], out_dir, GENERATE_TIMEOUT_S,
                    env={**os.environ, "ALLURE_NO_ANALYTICS": "true"})
    index = report_dir / "index.html"
    if done.returncode != 0 or not index.exists():
        raise RuntimeError(f"allure generate failed for {results}: {_last_line(done)}")
    try:
        page = verdict_first(offline(index.read_text(encoding="utf-8"))).encode("utf-8")
    except RuntimeError:
        index.unlink()  # nobody opens by mistake a page that would call a host
        raise
    write_atomically(index, page)
    latest = out_dir / f"allure-latest-{tier}" / "index.html"
    with shared_lock(out_dir):
        write_atomically(latest, page)  # a single file: the copy is the whole report
    return index, latest


def _run(cmd: list[str], cwd: Path, timeout: float, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False, env=env)
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
