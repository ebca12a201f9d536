"""The one order every acting helper follows: dry run, or confirm -> diagnostics bundle -> act -> audit.

Without --apply a helper prints its numbered plan and changes nothing. With it:
the audit log must be writable (an action that cannot be recorded is not
taken), a person confirms what needs one (disruptive and unconfined helpers),
the diagnostics bundle is written before anything changes (disruptive
helpers), then the helper acts, and whatever happened, success, failure or
Ctrl-C, is appended to the audit log.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import audit
from .bundle import write_bundle
from .context import Context
from .errors import FAILURES
from .targets import Target

SAFE_NOTE = " (a safe helper: no confirmation is asked)"


def numbered(steps: list[str]) -> list[str]:
    """
    >>> numbered(["restart it", "wait"])
    ['1. restart it', '2. wait']
    """
    return [f"{i}. {step}" for i, step in enumerate(steps, 1)]


def asks(what: str) -> str:
    """The dry run's note for a helper that will ask.

    >>> asks("nautilus-redis")
    ' (you will be asked to type nautilus-redis)'
    """
    return f" (you will be asked to type {what})"


def dry_run(ctx: Context, header: str, plan: list[str], note: str = "") -> int:
    """Print what --apply would do (the plan, already numbered) on which Docker endpoint; change nothing."""
    ctx.say(f"dry run of {header}; with --apply it would:")
    ctx.say_endpoints()
    for line in plan:
        ctx.say(line)
    ctx.say(f"dry run: nothing changed; add --apply to do it{note}")
    return 0


def failure(exc: BaseException) -> str:
    """How a failed action reads in the audit log: a helper's own one line, else what the exception was.

    >>> failure(KeyboardInterrupt()), failure(OSError("disk full"))
    ('failed: KeyboardInterrupt', 'failed: OSError: disk full')
    """
    if isinstance(exc, FAILURES):
        return f"failed: {exc}"
    text = " ".join(str(exc).split())
    return f"failed: {type(exc).__name__}" + (f": {text}" if text else "")


@dataclass
class Action:
    """One applied run of a helper: what it is, who confirms it, where its bundle goes."""

    helper: str
    audited_as: str  # the audit line's target: a container, "platform", a database, a folder
    plan: list[str]  # numbered, as the dry run printed it; shown again when a person is asked
    confirm: str | None = None  # what the person types (a container, the project, the Docker host); None: no question
    question: str = ""  # the line above the plan when asking
    bundle: tuple[Target, Path] | None = None  # (target, folder) of the diagnostics bundle; None: no bundle
    bundle_said: str = "diagnostics saved to {}"
    left_as: Callable[[BaseException], str] = failure  # the audit line of a failure (what is left down)
    says_audit: bool = True  # the last line names the audit log


def carry_out(ctx: Context, action: Action, act: Callable[[Path | None], tuple[str, int]]) -> int:
    """Confirm, bundle, act, audit; `act(bundle)` returns (outcome, exit status) and may print as it goes."""
    audit.ensure_writable(ctx.audit_path)
    if action.confirm is not None:
        ctx.confirm(action.confirm, [ctx.redactor.redact_text(line)
                                     for line in ([action.question] if action.question else []) + action.plan])
    bundle = None
    try:
        if action.bundle:
            target, folder = action.bundle
            bundle = write_bundle(ctx, action.helper, target, folder)
            ctx.say(action.bundle_said.format(bundle))
        outcome, code = act(bundle)
    except BaseException as exc:  # Ctrl-C included: whatever was started is on record
        record(ctx, action.helper, action.audited_as, action.left_as(exc), bundle)
        raise
    ctx.say(outcome)
    record(ctx, action.helper, action.audited_as, outcome, bundle)
    if action.says_audit:
        ctx.say(f"audit: one line appended to {ctx.audit_path}")
    return code


def record(ctx: Context, helper: str, target: str | None, outcome: str, bundle: Path | None = None) -> None:
    audit.append(ctx.audit_path, audit.record(helper, target, ctx.redactor.redact_text(outcome), bundle))
