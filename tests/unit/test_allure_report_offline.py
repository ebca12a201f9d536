"""The Allure report as its reader gets it: built by the pinned Allure 3 from a small results folder, opened from
file:// in headless Chromium in a laptop-sized window, every request the page makes watched through the DevTools
protocol: the verdict on the first screen, nothing asked of any other host, each failure under a category.

Needs node and npm (the pinned Allure is installed with `npm ci` on first use) and Debian's Chromium
(`make browser`). Without node/npm the test is skipped; without Chromium it fails, since then nothing proves
the report stays on this machine.
"""
from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from allure_commons.logger import AllureFileLogger
from allure_commons.model2 import Label, Link, StatusDetails
from allure_commons.model2 import TestResult as AllureResult  # not collected as a test class

from reports.allure_report import build

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run")
# What a page may load without reaching a host: itself and files beside it, its own inline parts, the browser's pages.
LOCAL_SCHEMES = {"file", "data", "blob", "about", "chrome", "devtools"}
LAPTOP = (1366, 768)  # the window a lead opens the report in, at its smallest
TITLE = "document.querySelector('[data-testid=\"report-title\"]')"
RUN = "daily-20261207-101500-a1b2c3-allure"
VERDICT = ("1 root cause (critical first), 2 checks blocked by them; container-running[nautilus-risk-engine] "
           "(critical): container nautilus-risk-engine is exited (exit code 137)")


def _result(title: str, status: str, message: str | None = None, **labels: str) -> AllureResult:
    now = int(time.time() * 1000)
    check = labels.get("check", "check")
    return AllureResult(
        uuid=str(uuid.uuid4()), historyId=uuid.uuid4().hex, testCaseId=uuid.uuid4().hex, name=title,
        fullName=f"checks.test_x#{check}", status=status, stage="finished", start=now, stop=now + 5,
        statusDetails=StatusDetails(message=message) if message else None,
        description=f"{title}\n\nFix:\n\n```\npython -m remediation restart nautilus-risk-engine\n```",
        labels=[Label(name=name, value=value) for name, value in labels.items()],
        # A link to a host is fine as long as nothing follows it unasked.
        links=[Link(type="link", url="https://wiki.example/troubleshooting-guide.md#container-wont-start",
                    name="guide: Container Won't Start")])


def write_results(folder: Path) -> None:
    """The shapes the suite writes: a root cause, a failure no specific category takes, two checks it blocked,
    one in maintenance and two that passed; environment.properties leads with the verdict."""
    logger = AllureFileLogger(str(folder))
    common = {"tier": "daily", "severity": "critical", "host": "local"}
    for result in (
        _result("Container running [nautilus-risk-engine]", "failed", "container nautilus-risk-engine is exited",
                check="container-running", area="containers", engine="risk", target="nautilus-risk-engine", **common),
        _result("Engine version reported [risk]", "failed", "no version in /health",
                check="engine-version-reported", area="engine_endpoints", engine="risk", target="risk", **common),
        _result("Engine health answers [risk]", "skipped", "blocked by container-running[nautilus-risk-engine]",
                check="engine-health-answers", area="engine_health", engine="risk", target="risk",
                blocked_by="container-running[nautilus-risk-engine]", **common),
        _result("Engine health latency [risk]", "skipped", "blocked by container-running[nautilus-risk-engine]",
                check="engine-health-latency", area="engine_health", engine="risk", target="risk",
                blocked_by="container-running[nautilus-risk-engine]", **common),
        _result("PostgreSQL vacuum recent [postgres]", "skipped", "in maintenance until 12:00",
                check="postgres-vacuum-recent", area="postgres", target="postgres", information="maintenance",
                **common),
        _result("Container running [nautilus-postgres]", "passed", check="container-running", area="containers",
                target="nautilus-postgres", **common),
        _result("Redis answers [redis]", "passed", check="redis-ping", area="redis", target="redis", **common),
    ):
        logger.report_result(result)
    (folder / "environment.properties").write_text(f"verdict={VERDICT}\ntier=daily\nrun_id=20261207-101500-a1b2c3\n",
                                                   encoding="utf-8")


class DevTools:
    """Chromium driven over --remote-debugging-pipe (it reads fd 3, writes fd 4, one JSON message per NUL): no
    websocket client, no port. Sees every request of the page and of what it starts (frames, workers, popups)."""

    def __init__(self, profile: Path):
        to_browser, self._to_browser = os.pipe()
        self._from_browser, from_browser = os.pipe()

        def onto_3_and_4():  # by way of fds above 9, so neither pipe end is overwritten before it is moved
            high_in = fcntl.fcntl(to_browser, fcntl.F_DUPFD, 10)
            high_out = fcntl.fcntl(from_browser, fcntl.F_DUPFD, 10)
            os.dup2(high_in, 3)
            os.dup2(high_out, 4)

        self.process = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
            pass_fds=(3, 4), preexec_fn=onto_3_and_4, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        os.close(to_browser)
        os.close(from_browser)
        self._buffer = b""
        self._last_id = 0
        self.requested: list[str] = []  # every URL the page or anything it started asked for, in order

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> int:
        self._last_id += 1
        message = {"id": self._last_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        return self._last_id

    def call(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30) -> dict:
        wanted = self.send(method, params, session)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self._read(deadline - time.monotonic()):
                if message.get("id") == wanted:
                    if "error" in message:
                        raise RuntimeError(f"{method}: {message['error']}")
                    return message.get("result", {})
        raise TimeoutError(f"chromium did not answer {method} within {timeout:g} s")

    def pump(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._read(deadline - time.monotonic())

    def _read(self, timeout: float) -> list[dict]:
        ready, _, _ = select.select([self._from_browser], [], [], max(timeout, 0))
        if ready:
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed its DevTools pipe")
            self._buffer += chunk
        messages = []
        while b"\0" in self._buffer:
            raw, self._buffer = self._buffer.split(b"\0", 1)
            message = json.loads(raw)
            self._observe(message)
            messages.append(message)
        return messages

    def _observe(self, message: dict) -> None:
        method, params = message.get("method"), message.get("params", {})
        if method == "Network.requestWillBeSent":
            self.requested.append(params["request"]["url"])
        elif method == "Network.webSocketCreated":
            self.requested.append(params["url"])
        elif method in ("Target.targetCreated", "Target.targetInfoChanged"):
            self.requested.append(params["targetInfo"]["url"] or "about:blank")  # a popup's page, before its requests
        elif method == "Target.attachedToTarget":
            self.watch(params["sessionId"])
            self.send("Runtime.runIfWaitingForDebugger", session=params["sessionId"])

    def watch(self, session: str) -> None:
        """Network events of the session, and its children held at start until they are watched too."""
        self.send("Network.enable", session=session)
        self.send("Target.setAutoAttach", {"autoAttach": True, "waitForDebuggerOnStart": True, "flatten": True},
                  session=session)

    def open(self, url: str, width: int, height: int) -> str:
        """The page in a `width` x `height` window, watched from before its first request."""
        self.call("Target.setDiscoverTargets", {"discover": True})
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.watch(session)
        self.call("Network.enable", session=session)  # answered: watching has started before the page loads
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session=session)
        self.call("Page.navigate", {"url": url}, session=session)
        return session

    def value(self, session: str, expression: str):
        return self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True},
                         session=session).get("result", {}).get("value")

    def text_once_showing(self, session: str, expression: str, *texts: str, timeout: float = 45) -> str:
        """The value of `expression` (a string from the page) once it holds every text, or what it held last."""
        deadline = time.monotonic() + timeout
        value = ""
        while time.monotonic() < deadline:
            value = self.value(session, expression) or ""
            if all(text in value for text in texts):
                break
            self.pump(0.25)
        return value

    def close(self) -> None:
        try:
            self.send("Browser.close")
            self.process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait(timeout=10)
        finally:
            os.close(self._to_browser)
            os.close(self._from_browser)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    if not (shutil.which("node") and shutil.which("npm")):
        pytest.skip("node and npm are not installed: the Allure 3 report cannot be built here")
    base = tmp_path_factory.mktemp("allure-offline")
    results = base / "out" / RUN
    results.mkdir(parents=True)
    write_results(results)
    index, latest = build(results, base / "out", "daily")
    assert latest.read_bytes() == index.read_bytes()
    return index


def test_report_opens_on_its_verdict_asks_no_other_host_and_files_failures_under_categories(report, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed (make browser, or apt-get install -y chromium)", pytrace=False)
    page = report.as_uri()
    browser = DevTools(tmp_path / "profile")
    try:
        session = browser.open(page, *LAPTOP)
        heading = browser.text_once_showing(session, f"{TITLE}?.innerText ?? ''", "1 root cause")
        overview = browser.text_once_showing(session, "document.body?.innerText ?? ''", "Metadata")
        browser.pump(2)  # Allure focuses the first test once its tree is drawn, and may scroll to it
        heading_box = browser.value(session, f"JSON.stringify({TITLE}.getBoundingClientRect())")
        browser.value(session, "location.hash = '#/categories'")
        categories = browser.text_once_showing(session, "document.body?.innerText ?? ''",
                                               "Engine down", "Other failing checks", "Blocked by a root cause")
        browser.pump(2)  # whatever the page would still fetch late (a tag loader is async)
    finally:
        browser.close()

    assert page in browser.requested, f"the page's own load was not seen, so nothing was watched: {browser.requested}"
    foreign = [url for url in browser.requested if urlsplit(url).scheme not in LOCAL_SCHEMES]
    assert not foreign, f"the report asked another host for {foreign}"
    assert heading == f"Nautilus health daily: {VERDICT}"
    box = json.loads(heading_box)
    assert 0 <= box["top"] and box["bottom"] <= LAPTOP[1], f"the verdict is not on the first screen: {box}"
    assert "Failed\n2" in overview and "Skipped\n3" in overview  # blocked and maintenance are Allure's skips
    assert {"Engine down", "Other failing checks", "Blocked by a root cause", "In maintenance"} <= set(
        categories.splitlines()), categories
    assert "Product errors" not in categories  # Allure's default for a failure no rule takes
