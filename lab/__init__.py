"""The reference Nautilus stack the suite is tested against (see lab/README.md)."""
from pathlib import Path

LAB_DIR = Path(__file__).resolve().parent
STATE_DIR = LAB_DIR / ".state"
COMPOSE_FILE = LAB_DIR / "compose.yaml"
PROJECT = "nautilus"


class LabError(Exception):
    """A lab step failed; its message is one line telling what to do."""
