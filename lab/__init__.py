"""The reference Nautilus stack the suite is tested against (see lab/README.md)."""
from pathlib import Path

LAB_DIR = Path(__file__).resolve().parent
STATE_DIR = LAB_DIR / ".state"
ENGINE_STATE_DIR = STATE_DIR / "engines"    # mounted at /lab-state in the engines (crash markers)
LOG_DIR = STATE_DIR / "logs"                # the inventory's log_dir
BACKUP_DIR = STATE_DIR / "backups"          # the inventory's backup_dir
BACKUP_ASIDE_DIR = STATE_DIR / "backups-aside"  # where the no-backup fault moves backups
COMPOSE_FILE = LAB_DIR / "compose.yaml"
# Not the platform's own project (very likely `nautilus`, its directory's name): Compose's --remove-orphans and
# `down --volumes` act on a whole project, so the lab's must never be the platform's.
PROJECT = "nautilus-lab"
PLATFORM_PROJECT = "nautilus"
# On every container, network and volume the lab creates; the lab acts on nothing without it (lab/ownership.py).
LABEL = "io.nautilus-health.lab"
LABEL_VALUE = "owned"
ENGINE_UID = 10001  # compose.yaml: the engines' and frontend's `user:`


class LabError(Exception):
    """A lab step failed; its message is one line telling what to do."""
