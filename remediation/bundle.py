"""The guide's pre-restart diagnostics, written to a folder before anything disruptive.

Everything is collected at once on a thread pool (each container's inspect and
last 50 log lines, every engine's /health, the host's memory
and disk) and every byte written goes through the Redactor. Container
environments are never written: `Config.Env` is dropped from the inspect data.

Files: manifest.json, docker-ps.txt, containers.json, inspect.json,
engine-health.json, host.json and <container>.log for each container.
"""
from __future__ import annotations

import datetime
import json
import os
import shutil
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from observation.docker_api import State
from observation.engines import health_samples
from observation.redact import Redactor

from .context import OUT_DIR, Context
from .errors import FAILURES, RemediationError
from .targets import Target, platform_containers

LOG_LINES = 50
CONTENTS = (f"container list with status, health and restart count (docker ps -a), docker inspect without the "
            f"environment, the last {LOG_LINES} log lines of each, every engine's /health (its critical "
            "response time as timeout, all at once), host memory and disk; secrets redacted")


def default_dir(helper: str, target: Target, now: datetime.datetime | None = None) -> Path:
    """reports/out/bundles/<helper>-<target>-<YYYYmmdd-HHMMSS>/

    >>> default_dir("restart-redis", Target("nautilus-redis", "local"), datetime.datetime(2025, 8, 1, 9, 5)).name
    'restart-redis-nautilus-redis-20250801-090500'
    """
    return OUT_DIR / "bundles" / f"{helper}-{target.label}-{(now or datetime.datetime.now()):%Y%m%d-%H%M%S}"


def write_bundle(ctx: Context, helper: str, target: Target, directory: Path) -> Path:
    """Collect and write the bundle; refuse (RemediationError) when it cannot be written."""
    docker = ctx.docker(target.host)
    platform = set(platform_containers(ctx.inventory))
    summaries = sorted((s for s in docker.containers() if "nautilus" in s["name"] or s["name"] in platform),
                       key=lambda s: s["name"])
    engines = ctx.inventory.engine_list()
    tasks = len(summaries) * 2 + 2
    with ThreadPoolExecutor(max_workers=min(32, tasks)) as pool:
        inspects = {s["name"]: pool.submit(docker.inspect, s["name"]) for s in summaries}
        logs = {s["name"]: pool.submit(docker.logs, s["name"], tail=LOG_LINES) for s in summaries}
        health = pool.submit(health_samples, ctx.inventory, engines)
        host = pool.submit(host_resources)
    problems: list[str] = []
    inspected = {name: _result(f, problems, f"inspect {name}") for name, f in inspects.items()}

    files: dict[str, Any] = {
        "docker-ps.txt": ps_table(summaries, inspected),
        "containers.json": [container_row(s, inspected.get(s["name"])) for s in summaries],
        "inspect.json": {name: without_environment(attrs) for name, attrs in inspected.items() if attrs},
        "engine-health.json": {name: sample.evidence() for name, sample in health.result().items()},
        "host.json": host.result(),
    }
    for name, future in logs.items():
        files[f"{name}.log"] = _result(future, problems, f"logs of {name}") or ""
    files["manifest.json"] = {
        "helper": helper, "target": target.label, "container": target.container, "docker_host": target.host,
        "written_at": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "contents": CONTENTS, "never_written": "container environments (docker inspect Config.Env)",
        "problems": problems, "files": sorted(files) + ["manifest.json"]}
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            (directory / name).write_text(render(content, ctx.redactor))
    except OSError as exc:
        raise RemediationError(f"cannot write the diagnostics bundle to {directory} ({exc.strerror or exc}); "
                               "nothing was restarted") from None
    return directory


def render(content: Any, redactor: Redactor) -> str:
    """Text or JSON with secrets masked, keys included.

    >>> print(render({"url": "postgresql://nautilus:pw@db/n", "s3cret": 1}, Redactor(["s3cret"])))
    {
      "url": "postgresql://nautilus:***@db/n",
      "***": 1
    }
    """
    if isinstance(content, str):
        return redactor.redact_text(content)
    return json.dumps(redactor.redact(_redact_keys(content, redactor)), indent=2, default=str)


def _redact_keys(obj: Any, redactor: Redactor) -> Any:
    if isinstance(obj, dict):
        return {redactor.redact_text(k) if isinstance(k, str) else k: _redact_keys(v, redactor)
                for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_redact_keys(v, redactor) for v in obj]
    return obj


def _result(future: Future, problems: list[str], what: str) -> Any:
    try:
        return future.result()
    except FAILURES as exc:
        problems.append(f"{what}: {exc}")
        return None


def without_environment(attrs: dict) -> dict:
    """docker inspect minus Config.Env, which holds passwords in plain text.

    >>> without_environment({"Config": {"Env": ["POSTGRES_PASSWORD=x"], "Image": "i"}})
    {'Config': {'Image': 'i'}}
    """
    config = {k: v for k, v in (attrs.get("Config") or {}).items() if k != "Env"}
    return {**attrs, "Config": config}


def container_row(summary: dict, attrs: dict | None) -> dict:
    row = {"name": summary["name"], "image": summary.get("Image"), "status": summary.get("Status"),
           "state": summary.get("State"), "ports": _ports(summary)}
    if attrs:
        state = State.of(attrs)
        row.update(health=state.health, restarts=state.restarts, exit_code=state.exit_code,
                   oom_killed=state.oom_killed, error=state.error, started_at=state.started_at,
                   finished_at=state.finished_at)
    return row


def ps_table(summaries: list[dict], inspected: dict[str, dict | None]) -> str:
    rows = [("NAME", "STATUS", "HEALTH", "RESTARTS", "PORTS")]
    for s in summaries:
        state = State.of(inspected[s["name"]]) if inspected.get(s["name"]) else None
        rows.append((s["name"], s.get("Status") or s.get("State") or "?", (state and state.health) or "-",
                     str(state.restarts) if state else "?", _ports(s) or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows) + "\n"


def _ports(summary: dict) -> str:
    return ", ".join(sorted({f"{p.get('IP', '')}:{p['PublicPort']}->{p.get('PrivatePort')}/{p.get('Type', 'tcp')}"
                             for p in summary.get("Ports") or [] if p.get("PublicPort")}))


def host_resources() -> dict:
    """This machine's free memory (/proc/meminfo, MiB), disk (GiB) and load, like `free -h; df -h`."""
    found: dict[str, Any] = {"machine": os.uname().nodename}
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        values = dict(line.split(":", 1) for line in meminfo.read_text().splitlines() if ":" in line)
        found["memory_mib"] = {key: int(values[key].split()[0]) // 1024 for key in
                               ("MemTotal", "MemFree", "MemAvailable", "SwapTotal", "SwapFree") if key in values}
    found["disk_gib"] = {}
    for mount in ("/", "/var/lib/docker"):
        if os.path.exists(mount):
            usage = shutil.disk_usage(mount)
            found["disk_gib"][mount] = {"total": round(usage.total / 2**30, 1), "free": round(usage.free / 2**30, 1),
                                        "used_pct": round(100 * usage.used / usage.total, 1) if usage.total else None}
    try:
        found["load_average"] = os.getloadavg()
    except OSError:
        pass
    return found
