"""The lab's maintenance traces on the host: real PostgreSQL backups and a maintenance log.

The suite's maintenance checks read them through the inventory's `backup_dir`
(lab/.state/backups) and `log_dir` (lab/.state/logs), as the guide's daily
script reads /var/backups/nautilus and /var/log/nautilus.

- A backup is `pg_dump` run inside nautilus-postgres, gzipped on the host and
  written under a temporary name, then renamed: a reader never sees half a file.
- `lab up` makes one when none from today exists, and logs what it did to
  `maintenance-<YYYYmmdd>.log`. It also rotates its own logs the way the guide
  does (earlier days' logs gzipped, logs older than 30 days removed) and keeps
  14 days of its own backups. Only files with the lab's own names are touched.
"""
from __future__ import annotations

import gzip
import os
import time
from pathlib import Path

from . import BACKUP_ASIDE_DIR, BACKUP_DIR, LOG_DIR, LabError
from .docker_access import client
from .ownership import owned_container

POSTGRES_CONTAINER = "nautilus-postgres"
BACKUP_PREFIX = "nautilus_backup_"
BACKUP_SUFFIX = ".sql.gz"
KEEP_BACKUPS_DAYS = 14
KEEP_LOGS_DAYS = 30
DUMP_END = b"-- PostgreSQL database dump complete"
# The lab's fault tables are not data worth keeping, and a held lock on one must not stall a backup.
DUMP_CMD = ["pg_dump", "-U", "nautilus", "-d", "nautilus", "--lock-wait-timeout=10s",
            "--exclude-table=lab_locktest", "--exclude-table=lab_bloat"]
DAY_S = 86400


def today() -> str:
    return time.strftime("%Y%m%d")


def backups_of(day: str, folder: Path = BACKUP_DIR) -> list[Path]:
    return sorted(folder.glob(f"{BACKUP_PREFIX}{day}-*{BACKUP_SUFFIX}"))


def log(line: str) -> Path:
    """Append one timestamped line to today's maintenance log."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    path = LOG_DIR / f"maintenance-{today()}.log"
    with path.open("a") as out:
        out.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}\n")
    return path


def backup() -> Path:
    """pg_dump inside the PostgreSQL container, gzipped, written atomically; returns the file."""
    BACKUP_DIR.mkdir(parents=True, exist_ok=True)
    final = BACKUP_DIR / f"{BACKUP_PREFIX}{time.strftime('%Y%m%d-%H%M%S')}{BACKUP_SUFFIX}"
    temp = BACKUP_DIR / f".{final.name}.{os.getpid()}.tmp"  # not matched by the backup pattern
    api = client().api
    owned_container(client(), POSTGRES_CONTAINER)  # pg_dump runs inside it: never in a container of the platform's
    started = time.monotonic()
    try:
        exec_id = api.exec_create(POSTGRES_CONTAINER, DUMP_CMD, stdout=True, stderr=True)["Id"]
        errors, tail = b"", b""
        with temp.open("wb") as raw:
            with gzip.GzipFile(filename=final.name[: -len(".gz")], mode="wb", fileobj=raw) as packed:
                for out, err in api.exec_start(exec_id, stream=True, demux=True):
                    if out:
                        packed.write(out)
                        tail = (tail + out)[-256:]
                    if err:
                        errors = (errors + err)[-2000:]
            raw.flush()
            os.fsync(raw.fileno())
        code = api.exec_inspect(exec_id)["ExitCode"]
    except Exception as exc:
        temp.unlink(missing_ok=True)
        raise LabError(f"backup failed: {exc.__class__.__name__}: {str(exc)[:200]}") from exc
    if code != 0 or DUMP_END not in tail:
        temp.unlink(missing_ok=True)
        detail = errors.decode(errors="replace").strip().splitlines()[-1:] or ["dump incomplete"]
        raise LabError(f"backup failed: pg_dump exit {code}: {detail[0]}")
    os.replace(temp, final)
    _fsync_dir(BACKUP_DIR)
    log(f"backup written: {final.name} ({final.stat().st_size} bytes, {time.monotonic() - started:.1f}s)")
    return final


SCHEMA_WAIT_S = 30


def wait_for_schema(timeout_s: float = SCHEMA_WAIT_S) -> None:
    """Until the engines have made their tables: on new volumes PostgreSQL starts after the engines, which
    retry their connection a few seconds later, and a backup taken before would hold no table of theirs."""
    container = owned_container(client(), POSTGRES_CONTAINER)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done = container.exec_run(["psql", "-U", "nautilus", "-d", "nautilus", "-tAc",
                                   "SELECT to_regclass('public.engine_heartbeats') IS NOT NULL"])
        if done.exit_code == 0 and done.output.strip() == b"t":
            return
        time.sleep(1)
    raise LabError(f"the engines made no table in {timeout_s:.0f} s: no backup of an empty database")


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def after_up(seconds: float) -> list[str]:
    """What `lab up` does once the stack is healthy; returns lines to print."""
    said = []
    rotate_logs()
    log(f"lab up: all services healthy in {seconds:.1f}s")
    if any(BACKUP_ASIDE_DIR.glob("*")):
        said.append("backups are set aside by a lab fault: no backup made (python -m lab heal restores them)")
        log("backups set aside by a lab fault: none made")
    elif any(p.stat().st_size > 0 for p in backups_of(today())):
        log("backup of today present: none made")
    else:
        try:
            wait_for_schema()
            said.append(f"backup written: {backup()}")
        except LabError as exc:
            log(f"ERROR {exc}")
            said.append(f"WARNING {exc}")
    prune_backups()
    return said


def rotate_logs(now: float | None = None) -> None:
    """The guide's log management, on the lab's own logs only: earlier days gzipped, 30 days kept."""
    now = time.time() if now is None else now
    current = f"maintenance-{today()}.log"
    for path in LOG_DIR.glob("maintenance-*.log"):
        if path.name != current:
            packed = path.with_name(path.name + ".gz")
            stat = path.stat()
            with path.open("rb") as source, gzip.open(packed, "wb") as target:
                target.write(source.read())
            os.utime(packed, (stat.st_atime, stat.st_mtime))
            path.unlink()
    for path in LOG_DIR.glob("maintenance-*.log.gz"):
        if now - path.stat().st_mtime > KEEP_LOGS_DAYS * DAY_S:
            path.unlink()


def prune_backups(now: float | None = None) -> None:
    now = time.time() if now is None else now
    for path in BACKUP_DIR.glob(f"{BACKUP_PREFIX}*{BACKUP_SUFFIX}"):
        if now - path.stat().st_mtime > KEEP_BACKUPS_DAYS * DAY_S:
            path.unlink()
