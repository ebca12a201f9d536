"""The guide's Knowledge Base of known errors, read from known_errors.yaml: one list for the check and the helpers.

>>> entry = by_id()["port-in-use"]
>>> entry.section, entry.helper, bool(entry.in_line("Error: listen tcp 0.0.0.0:8200: bind: address already in use"))
('Knowledge Base > Container Errors', 'free-port', True)
>>> [e.id for e in startup_errors()]
['factor-messagepriority-import', 'factor-messagebusconfig-client-id']
>>> [e.id for e in in_state({"State": {"ExitCode": 125, "Status": "exited"}})]
['exit-code-125']
"""
from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

FILE = Path(__file__).with_name("known_errors.yaml")
# Fixes that destroy data or kill blindly: the guide's own, which this list must never repeat.
UNSAFE_FIXES = (re.compile(r"kill\s+-9"), re.compile(r"prune\b[^;\n]*--volumes"))


def _regex(value: str | None) -> str | None:
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"bad regular expression {value!r}: {exc}") from None
    return value


class StateSignature(BaseModel):
    """What `docker inspect` shows for a known error."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    error: str | None = None  # regex on State.Error
    exit_code: int | None = None
    oom_killed: bool | None = None
    health: str | None = None  # regex on the outputs of the last health probes

    regexes_compile = field_validator("error", "health")(_regex)

    def matches(self, attrs: dict) -> str | None:
        """What in the container's state shows this error, or None."""
        state = attrs.get("State") or {}
        if self.error and re.search(self.error, state.get("Error") or "", re.IGNORECASE):
            return f"State.Error: {state['Error']}"
        if self.exit_code is not None and state.get("Status") != "running" and state.get("ExitCode") == self.exit_code:
            return f"State.ExitCode {self.exit_code} (status {state.get('Status')})"
        if self.oom_killed and state.get("OOMKilled"):
            return "State.OOMKilled true"
        if self.health:
            for probe in ((state.get("Health") or {}).get("Log") or [])[::-1]:
                output = str(probe.get("Output") or "").strip()
                if re.search(self.health, output, re.IGNORECASE):
                    return f"health probe: {output[:300]}"
        return None


class KnownError(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str
    error: str  # the guide's message
    section: str
    fix: str
    logs: str | None = None  # regex (case-insensitive) on a log line
    state: StateSignature | None = None
    helper: str | None = None
    summary: str | None = None  # how a diagnosis names it ("factor-engine import error")
    startup: bool = False

    regex_compiles = field_validator("logs")(_regex)

    @field_validator("fix")
    @classmethod
    def _safe(cls, value: str) -> str:
        for unsafe in UNSAFE_FIXES:
            if unsafe.search(value):
                raise ValueError(f"unsafe fix ({unsafe.pattern!r}): {value!r}")
        return value

    def in_line(self, line: str) -> bool:
        return bool(self.logs and _compiled(self.logs).search(line))

    def in_text(self, text: str) -> str | None:
        """The last line of `text` showing this error, or None."""
        if not self.logs:
            return None
        for line in reversed(text.splitlines()):
            if self.in_line(line):
                return line
        return None


@cache
def _compiled(pattern: str) -> re.Pattern:
    return re.compile(pattern, re.IGNORECASE)


@cache
def known_errors(path: Path = FILE) -> tuple[KnownError, ...]:
    """Every entry of the YAML file, validated (a bad entry is refused naming its id)."""
    entries = yaml.safe_load(path.read_text()) or []
    found = []
    for raw in entries:
        try:
            found.append(KnownError.model_validate(raw))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "entry"
            name = raw.get("id") if isinstance(raw, dict) else raw
            raise ValueError(f"{path.name}: entry {name}: {where}: {first['msg']}") from None
    ids = [e.id for e in found]
    if len(ids) != len(set(ids)):
        raise ValueError(f"{path.name}: duplicate ids {sorted({i for i in ids if ids.count(i) > 1})}")
    return tuple(found)


def by_id() -> dict[str, KnownError]:
    return {e.id: e for e in known_errors()}


def startup_errors() -> tuple[KnownError, ...]:
    """The errors that stop a container from starting (the guide's factor-engine errors)."""
    return tuple(e for e in known_errors() if e.startup)


def log_pattern(entries: tuple[KnownError, ...] | None = None) -> re.Pattern | None:
    """One regex matching any entry's log signature: a cheap first filter, so most lines are tested once."""
    chosen = [e.logs for e in (entries if entries is not None else known_errors()) if e.logs]
    return re.compile("|".join(f"(?:{p})" for p in chosen), re.IGNORECASE) if chosen else None


def in_state(attrs: dict, entries: tuple[KnownError, ...] | None = None) -> list[KnownError]:
    """The entries whose state signature `docker inspect` shows."""
    return [e for e in (entries if entries is not None else known_errors()) if e.state and e.state.matches(attrs)]
