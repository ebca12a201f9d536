"""Headless Debian Chromium for the report tests: the rendered DOM of a page, and a screenshot of it.

Background networking and every phone-home feature are off, so the browser
sends nothing beyond the page it is given (a file:// URL or loopback).
"""
from __future__ import annotations

import html
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


FIRST_SCREEN = """<!doctype html><html><body style="margin:0">
<iframe id="page" src="{url}" width="{width}" height="{height}" style="border:0"></iframe><pre id="seen"></pre>
<script>
document.getElementById("page").onload = () => setTimeout(() => {{
  const doc = document.getElementById("page").contentDocument;
  const walker = doc.createTreeWalker(doc.body, NodeFilter.SHOW_TEXT);
  const seen = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {{
    const range = doc.createRange();
    range.selectNodeContents(node);
    const box = range.getBoundingClientRect();
    const folded = node.parentElement && node.parentElement.closest("details:not([open]) > :not(summary)");
    if (!folded && box.height > 0 && box.top < {height} && box.bottom > 0 && node.textContent.trim())
      seen.push(node.textContent.trim());
  }}
  document.getElementById("seen").textContent = seen.join(" ");
}}, 1500);
</script></body></html>"""


def first_screen(path: Path, width: int = 1280, height: int = 800) -> str:
    """The text a reader sees on opening the page, without scrolling: every text whose box starts above the fold of
    a `width` x `height` window (the page is framed by a file:// page of ours, which reads its layout)."""
    with tempfile.TemporaryDirectory(prefix="nautilus-first-screen-") as folder:
        frame = Path(folder) / "first-screen.html"
        frame.write_text(FIRST_SCREEN.format(url=path.resolve().as_uri(), width=width, height=height))
        dom = rendered_dom(frame.as_uri(), budget_ms=10_000)
    seen = dom.split('<pre id="seen">', 1)[1].split("</pre>", 1)[0]
    return " ".join(html.unescape(seen).split())
