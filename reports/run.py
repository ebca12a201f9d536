"""One run's identity and the files it writes, named so that two runs never collide.

A run id is its start time plus random hex: two cron entries starting in the
same second still get distinct ids. Every artifact of a run carries
`<tier>-<run id>` in its name; the files runs share (latest-<tier>.html, the
Prometheus textfile, Allure history) are replaced atomically under a lock.

>>> files = RunFiles(Path("/r"), "daily", "20261125-101500-a1b2c3")
>>> files.html.name, files.allure_dir.name, files.junit.name, files.summary.name
('daily-20261125-101500-a1b2c3.html', 'daily-20261125-101500-a1b2c3-allure', 'daily-20261125-101500-a1b2c3.junit.xml', 'daily-20261125-101500-a1b2c3.json')
>>> parse_stem("daily-20261125-101500-a1b2c3-allure")
('daily', '20261125-101500-a1b2c3')
>>> parse_stem("latest-daily.html") is None
True
"""
from __future__ import annotations

import os
import re
import secrets
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterator

from filelock import FileLock

RUN_ID = re.compile(r"(?P<tier>[A-Za-z0-9-]+?)-(?P<id>\d{8}-\d{6}-[0-9a-f]{6})(?:[.-]|$)")
LOCK_TIMEOUT_S = 30


def new_run_id(now: float | None = None) -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.localtime(now)) + "-" + secrets.token_hex(3)


def run_started(run_id: str) -> datetime:
    return datetime.strptime(run_id[:15], "%Y%m%d-%H%M%S")


def parse_stem(name: str) -> tuple[str, str] | None:
    """(tier, run id) of an artifact's file name; None for shared files."""
    match = RUN_ID.match(name)
    return (match["tier"], match["id"]) if match else None


@dataclass(frozen=True)
class RunFiles:
    out_dir: Path
    tier: str
    run_id: str

    @property
    def stem(self) -> str:
        return f"{self.tier}-{self.run_id}"

    @property
    def html(self) -> Path:
        return self.out_dir / f"{self.stem}.html"

    @property
    def allure_dir(self) -> Path:
        return self.out_dir / f"{self.stem}-allure"

    @property
    def junit(self) -> Path:
        return self.out_dir / f"{self.stem}.junit.xml"

    @property
    def summary(self) -> Path:
        return self.out_dir / f"{self.stem}.json"

    @property
    def latest_html(self) -> Path:
        return self.out_dir / f"latest-{self.tier}.html"

    @property
    def latest_summary(self) -> Path:
        return self.out_dir / f"latest-{self.tier}.json"


@contextmanager
def shared_lock(out_dir: Path) -> Iterator[None]:
    """Serialises writers of the files runs share (one lock for the reports directory)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out_dir / ".shared.lock"), timeout=LOCK_TIMEOUT_S):
        yield


def write_atomically(path: Path, data: bytes) -> None:
    """Readers see the old file or the new one, never half of either."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
