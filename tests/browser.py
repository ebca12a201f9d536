"""Headless Debian Chromium for the report tests: the rendered DOM of a page, and a screenshot of it.

Background networking and every phone-home feature are off, so the browser
sends nothing beyond the page it is given (a file:// URL or loopback).
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--metrics-recording-only", "--mute-audio",
         "--hide-scrollbars", "--allow-file-access-from-files")
RENDER_BUDGET_MS = 5000  # virtual time the page's scripts get before the DOM is read
TIMEOUT_S = 60


def available() -> bool:
    return Path(CHROMIUM).exists()


def _run(url: str, *extra: str, budget_ms: int = RENDER_BUDGET_MS) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="nautilus-chromium-") as profile:
        return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}",
                               f"--virtual-time-budget={budget_ms}", *extra, url],
                              capture_output=True, text=True, timeout=TIMEOUT_S, check=False)


def rendered_dom(url: str, budget_ms: int = RENDER_BUDGET_MS) -> str:
    """The page's DOM after its scripts ran (for `budget_ms` of virtual time), as Chromium serialises it."""
    done = _run(url, "--dump-dom", budget_ms=budget_ms)
    if done.returncode != 0 or not done.stdout:
        raise RuntimeError(f"chromium could not render {url}: {done.stderr[-500:]}")
    return done.stdout


def dom_showing(url: str, *texts: str) -> str:
    """The rendered DOM once it shows every text: a script-built page (Allure's) may need more time on a
    busy machine, so the budget grows (5, 15, 30 s of virtual time) before giving up."""
    dom = ""
    for budget_ms in (RENDER_BUDGET_MS, 15_000, 30_000):
        dom = rendered_dom(url, budget_ms)
        if all(text in dom for text in texts):
            break
    return dom


def screenshot(url: str, path: Path, size: str = "1400,1800") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    done = _run(url, f"--screenshot={path}", f"--window-size={size}")
    if not path.exists():
        raise RuntimeError(f"chromium made no screenshot of {url}: {done.stderr[-500:]}")
    return path
