"""Where the suite keeps what outlives a run, the same for checks and helpers."""
from __future__ import annotations

from pathlib import Path

from .inventory import Inventory

OUT_DIR = Path(__file__).resolve().parent.parent / "reports" / "out"


def state_dir(inventory: Inventory) -> Path:
    """What one run keeps for the next (restart history, maintenance windows): the inventory's state_dir
    (or --state-dir, which sets it), else reports/out/state."""
    return Path(inventory.state_dir) if inventory.state_dir else OUT_DIR / "state"
