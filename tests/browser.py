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


def _run(url: str, *extra: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="nautilus-chromium-") as profile:
        return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}",
                               f"--virtual-time-budget={RENDER_BUDGET_MS}", *extra, url],
                              capture_output=True, text=True, timeout=TIMEOUT_S, check=False)


def rendered_dom(url: str) -> str:
    """The page's DOM after its scripts ran, as Chromium serialises it."""
    done = _run(url, "--dump-dom")
    if done.returncode != 0 or not done.stdout:
        raise RuntimeError(f"chromium could not render {url}: {done.stderr[-500:]}")
    return done.stdout


def screenshot(url: str, path: Path, size: str = "1400,1800") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    done = _run(url, f"--screenshot={path}", f"--window-size={size}")
    if not path.exists():
        raise RuntimeError(f"chromium made no screenshot of {url}: {done.stderr[-500:]}")
    return path
