"""Scale the lab's engines for benchmarks: `python -m lab.scale up N` / `python -m lab.scale down`.

`up N` (N a multiple of 9, at least 9) runs N engine containers: the nine of
compose.yaml plus N/9 - 1 replicas of each, `<e>-engine-r2`, `<e>-engine-r3`, ...
(containers `nautilus-<e>-engine-r<k>`), written as a Compose override file
`lab/.state/compose-scale.yaml` and started through the lab's own Compose runner
(lab/compose.py: same project, image tag and password). Replica k of the engine
on port P listens on P + k - 1 (8101, 8102, ... for analytics), published on
127.0.0.1 only. It also writes `lab/.state/inventory-N.yaml`: lab/inventory.yaml
with each replica added as a copy of its engine's entry (the guide's defaults
for that engine merged under the lab's, since a new name does not inherit them)
with its own name (`<e>-r<k>`), container and port.

A replica runs the same engine program with the same ENGINE_NAME, so it serves
the same contract; the program names its Redis connection and heartbeat key
after ENGINE_NAME, so replicas share that bus evidence with their engine.

Replicas probe their health every 10 s (the lab's engines: 3 s, for the fault
tests; Docker 20.10 has no start_interval): 45 more containers probed every 3 s would
spend a large part of this 2-CPU machine on `docker exec`-style health checks.

`down` removes every replica container and the generated files, then brings the
standard lab back to all-healthy (`compose up -d`, as `python -m lab heal` does).
"""
from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path

import yaml

from . import COMPOSE_FILE, LAB_DIR, STATE_DIR, LabError
from .compose import compose
from .stack import UP_TIMEOUT_S, compose_env, guard, lab_containers, prepare_state_dirs, settle, wait_healthy

OVERRIDE_FILE = STATE_DIR / "compose-scale.yaml"
LAB_INVENTORY = LAB_DIR / "inventory.yaml"
REPLICA_RE = re.compile(r"^(?P<base>[a-z0-9]+-engine)-r(?P<k>\d+)$")
REPLICA_HEALTH = {"interval": "10s"}
BIND = "127.0.0.1"


def inventory_path(total: int) -> Path:
    return STATE_DIR / f"inventory-{total}.yaml"


def replicas_per_engine(total: int, engines: int = 9) -> int:
    """How many containers per engine for `total` engine containers (refused unless a multiple of the engines)."""
    if total < engines or total % engines:
        raise LabError(f"engine count must be a multiple of {engines} and at least {engines} (got {total})")
    per = total // engines
    if per > 99:
        raise LabError(f"at most 99 containers per engine (their ports are base+0..base+98; got {per})")
    return per


def base_engines(compose_doc: dict) -> dict[str, dict]:
    """The `<e>-engine` services of compose.yaml (anchors resolved), by service name."""
    return {name: body for name, body in compose_doc["services"].items()
            if name.endswith("-engine") and not REPLICA_RE.match(name)}


def _host_port(body: dict) -> int:
    return int(str(body["ports"][0]).rsplit(":", 2)[1])


def override_document(compose_doc: dict, total: int, lab_dir: Path = LAB_DIR) -> dict:
    """The Compose override adding the replicas for `total` engine containers."""
    per = replicas_per_engine(total, len(base_engines(compose_doc)))
    services = {}
    used = {_host_port(b) for b in compose_doc["services"].values() if b.get("ports")}
    for name, body in base_engines(compose_doc).items():
        port = _host_port(body)
        for k in range(2, per + 1):
            replica_port = port + k - 1
            if replica_port in used:
                raise LabError(f"replica port {replica_port} of {name} is already used in compose.yaml")
            used.add(replica_port)
            replica = copy.deepcopy(body)
            replica["container_name"] = f"{body['container_name']}-r{k}"
            replica["environment"] = {**body["environment"], "ENGINE_PORT": str(replica_port)}
            replica["ports"] = [f"{BIND}:{replica_port}:{replica_port}"]
            replica["healthcheck"] = {**body["healthcheck"], **REPLICA_HEALTH}
            # Absolute host paths: an override file's relative paths would depend on Compose's rule for them.
            replica["volumes"] = [_absolute(v, lab_dir) for v in body.get("volumes", [])]
            services[f"{name}-r{k}"] = replica
    return {"services": services}


def _absolute(volume: str, lab_dir: Path) -> str:
    return str(lab_dir / volume[2:]) if volume.startswith("./") else volume


def _merge(base: dict, override: dict) -> dict:
    """Deep merge as the suite merges an inventory over its defaults (None removes; `body` is one value)."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and key != "body":
            merged[key] = _merge(merged[key] if isinstance(merged.get(key), dict) else {}, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def inventory_document(lab_inventory: dict, override: dict, defaults: dict | None = None,
                       lab_dir: Path = LAB_DIR) -> dict:
    """lab/inventory.yaml with one engine entry per replica of `override` (from override_document)."""
    document = copy.deepcopy(lab_inventory)
    engines = document.setdefault("engines", {})
    default_engines = (defaults or {}).get("engines", {})
    for service, body in override["services"].items():
        match = REPLICA_RE.match(service)
        engine = match["base"][: -len("-engine")]
        entry = _merge(default_engines.get(engine, {}), lab_inventory.get("engines", {}).get(engine) or {})
        entry["port"] = int(body["environment"]["ENGINE_PORT"])
        entry["container"] = body["container_name"]
        engines[f"{engine}-r{match['k']}"] = entry
    # Relative paths are the inventory file's folder's; this file lives in lab/.state, not lab/.
    for key in ("log_dir", "backup_dir", "state_dir", "compose_file"):
        if document.get(key) and not Path(document[key]).is_absolute():
            document[key] = str((lab_dir / document[key]).resolve())
    return document


def write_files(total: int) -> tuple[dict, Path]:
    from observation.inventory import default_document  # the suite's defaults for the guide's engines
    compose_doc = yaml.safe_load(COMPOSE_FILE.read_text())
    override = override_document(compose_doc, total)
    STATE_DIR.mkdir(exist_ok=True)
    header = "# Generated by `python -m lab.scale up` (lab/scale.py); removed by `python -m lab.scale down`.\n"
    OVERRIDE_FILE.write_text(header + yaml.safe_dump(override, sort_keys=False))
    lab_inventory = yaml.safe_load(LAB_INVENTORY.read_text()) or {}
    inventory = inventory_document(lab_inventory, override, default_document())
    path = inventory_path(total)
    path.write_text(header + yaml.safe_dump(inventory, sort_keys=False))
    return override, path


def replica_containers() -> list:
    return [c for c in lab_containers()
            if REPLICA_RE.match(c.labels.get("com.docker.compose.service", ""))]


def remove_replicas(keep: set[str] = frozenset()) -> list[str]:
    removed = []
    for container in replica_containers():
        if container.labels.get("com.docker.compose.service") not in keep:
            container.remove(force=True)
            removed.append(container.name)
    return removed


def up(total: int) -> Path:
    guard()
    override, inventory = write_files(total)
    wanted = set(override["services"])
    removed = remove_replicas(keep=wanted)
    if removed:
        print(f"[lab.scale] removed {len(removed)} replicas not wanted at {total}", flush=True)
    prepare_state_dirs()
    if wanted:
        print(f"[lab.scale] starting {len(wanted)} replicas ({total} engine containers)", flush=True)
        compose("-f", str(OVERRIDE_FILE), "up", "-d", "--wait", "--wait-timeout", str(UP_TIMEOUT_S),
                *sorted(wanted), env=compose_env())
    settle()
    print(f"[lab.scale] {total} engines up; inventory: {inventory}", flush=True)
    return inventory


def down() -> None:
    guard()
    removed = remove_replicas()
    for path in [OVERRIDE_FILE, *STATE_DIR.glob("inventory-*.yaml")]:
        path.unlink(missing_ok=True)
    print(f"[lab.scale] removed {len(removed)} replicas; waiting for the standard lab to be healthy", flush=True)
    wait_healthy()
    print("[lab.scale] standard lab healthy", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.scale", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    up_cmd = sub.add_parser("up", help="run N engine containers (a multiple of 9); prints the inventory path")
    up_cmd.add_argument("total", type=int)
    sub.add_parser("down", help="remove the replicas; the standard lab stays, healthy")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            up(args.total)
        else:
            down()
    except LabError as exc:
        print(f"lab.scale: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
