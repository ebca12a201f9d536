"""The guide's pre-restart diagnostics, written to a folder before anything disruptive.

Taken concurrently (container states, logs and engine health all at once) and
redacted: container environments are never written at all.
"""
from __future__ import annotations

import json
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from .context import OUT_DIR, Context

LOG_LINES = 50


def write_bundle(ctx: Context, helper: str, target: str, directory: Path | None = None) -> Path:
    directory = directory or OUT_DIR / "bundles" / f"{helper}-{target}-{time.strftime('%Y%m%d-%H%M%S')}"
    directory.mkdir(parents=True, exist_ok=True)
    client = ctx.docker()
    containers = [c for c in client.containers.list(all=True) if c.name.startswith("nautilus")]
    engines = ctx.inventory.engine_list()

    def health(engine) -> tuple[str, dict]:
        url = f"http://{ctx.inventory.host(engine.host).address}:{engine.port}{engine.health_path}"
        try:
            reply = requests.get(url, timeout=5)
            return engine.name, {"url": url, "status": reply.status_code, "body": reply.text[:2000]}
        except requests.RequestException as exc:
            return engine.name, {"url": url, "error": type(exc).__name__}

    def logs(container) -> tuple[str, str]:
        try:
            return container.name, container.logs(tail=LOG_LINES).decode(errors="replace")
        except Exception as exc:
            return container.name, f"logs unavailable: {type(exc).__name__}"

    with ThreadPoolExecutor(max_workers=16) as pool:
        healths = dict(pool.map(health, engines))
        container_logs = dict(pool.map(logs, containers))

    redact = ctx.redactor
    states = [{"name": c.name, "status": c.status, "health": c.attrs["State"].get("Health", {}).get("Status"),
               "restarts": c.attrs.get("RestartCount"), "exit_code": c.attrs["State"].get("ExitCode"),
               "started_at": c.attrs["State"].get("StartedAt")} for c in containers]
    disk = shutil.disk_usage("/")
    host = {"disk_total_gb": round(disk.total / 2**30, 1), "disk_free_gb": round(disk.free / 2**30, 1),
            "meminfo": Path("/proc/meminfo").read_text().splitlines()[:3] if Path("/proc/meminfo").exists() else []}
    (directory / "containers.json").write_text(json.dumps(redact.redact(states), indent=2))
    (directory / "engine-health.json").write_text(json.dumps(redact.redact(healths), indent=2))
    (directory / "host.json").write_text(json.dumps(host, indent=2))
    for name, text in container_logs.items():
        (directory / f"{name}.log").write_text(redact.redact_text(text))
    return directory
