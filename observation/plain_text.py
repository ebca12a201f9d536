"""Text from a target (a log line, a health body) shown as text: control characters made visible.

An ANSI escape in an engine's log would otherwise recolour or rewrite the
SRE's terminal; shown as `\\x1b[31m` it is evidence instead.

>>> visible("\\x1b[31mred\\x1b[0m\\tok\\nnext\\r\\x00")
'\\\\x1b[31mred\\\\x1b[0m\\tok\\nnext\\\\x0d\\\\x00'
"""
from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def visible(text: str) -> str:
    """Tabs and newlines stay; every other control character becomes its escape sequence."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
