"""Maintenance facts read through testinfra: today's backup, log files by age, container log sizes; free of pytest.

`host` is a testinfra host (this machine or an ssh host). Listing uses one
`find -printf` per directory rather than a command per file, so a directory
of thousands of logs costs one round trip.
"""
from __future__ import annotations

import fnmatch
import posixpath
import time
from dataclasses import dataclass, field
from datetime import date

from .errors import Unobserved, describe

DAY_S = 86400
GZIP_PROBE_BYTES = 65536  # enough of a backup to prove it decompresses, without reading gigabytes


@dataclass(frozen=True)
class FileEntry:
    path: str
    size: int
    mtime: float

    def age_days(self, now: float) -> float:
        return round((now - self.mtime) / DAY_S, 1)


def parse_find(text: str) -> list[FileEntry]:
    """`find DIR -type f -printf '%T@ %s %p\\n'` -> entries (paths may contain spaces).

    >>> parse_find("1700000000.5 120 /var/log/nautilus/a b.log\\n")
    [FileEntry(path='/var/log/nautilus/a b.log', size=120, mtime=1700000000.5)]
    """
    entries = []
    for line in text.splitlines():
        mtime, size, path = line.split(" ", 2)
        entries.append(FileEntry(path, int(size), float(mtime)))
    return entries


def list_files(host, directory: str, recursive: bool = True) -> list[FileEntry] | None | Unobserved:
    """Regular files under `directory`; None when it does not exist (a fact); Unobserved when it cannot be read."""
    folder = host.file(directory)
    if not folder.exists:
        return None
    if not folder.is_directory:
        return Unobserved(f"{directory} is not a directory")
    depth = "" if recursive else "-maxdepth 1 "
    result = host.run(f"find %s {depth}-type f -printf '%%T@ %%s %%p\\n'", directory)
    if result.rc != 0:
        return Unobserved(f"cannot list {directory}: {result.stderr.strip()[:200] or f'find exited {result.rc}'}")
    return parse_find(result.stdout)


def backup_glob(pattern: str, day: date) -> str:
    """The inventory's backup pattern for one day.

    >>> backup_glob("nautilus_backup_{date}*.sql.gz", date(2025, 8, 3))
    'nautilus_backup_20250803*.sql.gz'
    """
    return pattern.replace("{date}", day.strftime("%Y%m%d"))


@dataclass(frozen=True)
class Backup:
    path: str
    size: int
    mtime: float
    decompressed_probe: int | None  # bytes out of the first GZIP_PROBE_BYTES; None: not a .gz name
    probe_error: str = ""

    @property
    def usable(self) -> bool:
        """Not empty, and when gzipped its start decompresses to something."""
        return self.size > 0 and (self.decompressed_probe is None or self.decompressed_probe > 0)

    def line(self) -> str:
        text = f"{posixpath.basename(self.path)} ({self.size} bytes"
        if self.decompressed_probe is not None:
            text += (", its gzip start decompresses" if self.decompressed_probe
                     else f", gzip start decompresses to nothing{': ' + self.probe_error if self.probe_error else ''}")
        return text + ")"


@dataclass(frozen=True)
class BackupSample:
    directory: str
    glob: str
    matches: list[Backup]
    others: list[str]  # the newest few files that do not match, to show what is there
    exists: bool = True  # whether the directory exists at all


def probe_gzip(host, path: str) -> tuple[int, str]:
    """How many bytes the first GZIP_PROBE_BYTES of `path` decompress to, and gzip's complaint if any.

    A truncated tail is expected (only the start is read), so only the output counts.
    """
    result = host.run(f"head -c {GZIP_PROBE_BYTES} %s | gzip -dc 2>&1 >/dev/null | head -c 200; "
                      f"head -c {GZIP_PROBE_BYTES} %s | gzip -dc 2>/dev/null | head -c 4096 | wc -c", path, path)
    lines = result.stdout.strip().splitlines()
    try:
        count = int(lines[-1].strip())
    except (IndexError, ValueError):
        return 0, (result.stderr or result.stdout).strip()[:200]
    complaint = " ".join(lines[:-1]).replace("gzip: stdin: ", "").strip()
    return count, "" if "unexpected end of file" in complaint else complaint


def sample_backups(host, directory: str, pattern: str, day: date) -> BackupSample | Unobserved:
    glob = backup_glob(pattern, day)
    try:
        files = list_files(host, directory, recursive=False)
        if isinstance(files, Unobserved):
            return files
        if files is None:
            return BackupSample(directory, glob, [], [], exists=False)
        matches = []
        for entry in sorted(files, key=lambda e: e.mtime, reverse=True):
            if not fnmatch.fnmatch(posixpath.basename(entry.path), glob):
                continue
            probe, error = (probe_gzip(host, entry.path) if entry.path.endswith(".gz") and entry.size else
                            (0 if entry.path.endswith(".gz") else None, ""))
            matches.append(Backup(entry.path, entry.size, entry.mtime, probe, error))
        others = [posixpath.basename(e.path) for e in sorted(files, key=lambda e: e.mtime, reverse=True)
                  if not fnmatch.fnmatch(posixpath.basename(e.path), glob)][:5]
        return BackupSample(directory, glob, matches, others)
    except Exception as exc:  # testinfra backends raise their own errors on a lost connection
        return Unobserved(f"cannot read {directory}: {describe(exc)}")


@dataclass(frozen=True)
class LogRotation:
    """Files of the log directory the guide's rotation should have dealt with."""

    directory: str
    uncompressed: list[FileEntry]  # *.log older than the compress age
    expired: list[FileEntry]  # *.log older than the delete age
    total_files: int
    exists: bool = True
    expired_archives: list[FileEntry] = field(default_factory=list)  # *.log.gz older than the delete age


def judge_rotation(directory: str, files: list[FileEntry], now: float, compress_after_days: float,
                   delete_after_days: float) -> LogRotation:
    """The guide's rotation: *.log compressed after 7 days, deleted after 30 (find -mtime counts whole days).

    >>> now = 100 * 86400
    >>> files = [FileEntry("/l/a.log", 1, now - 8 * 86400), FileEntry("/l/b.log", 1, now - 31 * 86400),
    ...          FileEntry("/l/c.log.gz", 1, now - 40 * 86400), FileEntry("/l/d.log", 1, now - 86400)]
    >>> r = judge_rotation("/l", files, now, 7, 30)
    >>> [f.path for f in r.uncompressed], [f.path for f in r.expired], [f.path for f in r.expired_archives]
    (['/l/a.log'], ['/l/b.log'], ['/l/c.log.gz'])
    """
    logs = [f for f in files if f.path.endswith(".log")]
    expired = [f for f in logs if now - f.mtime > delete_after_days * DAY_S]
    uncompressed = [f for f in logs if compress_after_days * DAY_S < now - f.mtime <= delete_after_days * DAY_S]
    # Archives past the delete age: not judged by logs-rotated, deleted by the rotate-logs helper.
    archives = [f for f in files if f.path.endswith(".log.gz") and now - f.mtime > delete_after_days * DAY_S]
    by_age = lambda f: f.mtime  # noqa: E731 - oldest first
    return LogRotation(directory, sorted(uncompressed, key=by_age), sorted(expired, key=by_age), len(files),
                       expired_archives=sorted(archives, key=by_age))


def sample_log_rotation(host, directory: str, compress_after_days: float, delete_after_days: float,
                        now: float | None = None) -> LogRotation | Unobserved:
    """The platform's logs: regular files directly in `directory` (no subfolder, no symlink: `find -type f`).

    The logs-rotated check judges this selection and the rotate-logs helper acts on it, so what one flags the
    other fixes, and a backup folder or anything linked from elsewhere is never touched.
    """
    try:
        files = list_files(host, directory, recursive=False)
    except Exception as exc:
        return Unobserved(f"cannot read {directory}: {describe(exc)}")
    if isinstance(files, Unobserved):
        return files
    if files is None:
        return LogRotation(directory, [], [], 0, exists=False)
    return judge_rotation(directory, files, time.time() if now is None else now, compress_after_days,
                          delete_after_days)


def file_size(host, path: str) -> int | Unobserved:
    """Size of one file through testinfra (`host.file(path).size`), or why it cannot be read."""
    try:
        target = host.file(path)
        if not target.exists:
            return Unobserved(f"{path} does not exist (or cannot be seen: the suite reads Docker's log files as root)")
        return target.size
    except Exception as exc:
        return Unobserved(f"cannot stat {path}: {describe(exc)}")
