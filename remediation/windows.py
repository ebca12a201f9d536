"""`maintenance`: open, close and list maintenance windows, so planned work is not an incident.

    bin/nautilus-remediation maintenance risk --for 2h --reason "index rebuild" --apply
    bin/nautilus-remediation maintenance risk --end --apply
    bin/nautilus-remediation maintenance                      # the windows open now

While a window is open every check of that engine or service says "in
maintenance: reason, until T" instead of judging it: no exit 1, no page, no
0 series. A window ends by itself at its time; isolate-engine opens one that
lasts until restore-engine closes it. The windows live beside the run state
(observation/maintenance_windows.py), which the checks read as a run starts.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from observation.maintenance_windows import Window, WindowBook, WindowError, now_utc, parse_duration, subject_of
from observation.paths import state_dir

from . import audit
from .context import Context
from .invocation import render
from .registry import argv_for
from .errors import RemediationError

MAX_WINDOW = timedelta(days=7)  # a longer one is forgotten work: the platform would go unwatched for weeks


@dataclass(frozen=True)
class WindowRequest:
    """What the command line asked of `maintenance`."""

    duration: str | None = None  # --for
    reason: str | None = None  # --reason
    end: bool = False  # --end


def command(ctx: Context, argument: str, *flags: str) -> str:
    """This helper's own command line for the same inventory and state dir (so the same windows)."""
    return render(argv_for("maintenance", argument, inventory=ctx.inventory_path, state_dir=ctx.state_dir_path,
                           extra=flags))


def book(ctx: Context) -> WindowBook:
    return WindowBook(state_dir(ctx.inventory))


def open_window(ctx: Context, subject: str, reason: str, opened_by: str, until: datetime | None) -> Window:
    """Open (or replace) the subject's window and put it on the audit log."""
    window = Window(subject, reason, opened_by, now_utc().isoformat(timespec="seconds"),
                    until.isoformat(timespec="seconds") if until else None)
    try:
        book(ctx).open(window)
    except WindowError as exc:
        raise RemediationError(str(exc)) from None
    audit.append(ctx.audit_path, audit.record(opened_by, subject, ctx.redactor.redact_text(window.line()), None))
    return window


def close_window(ctx: Context, subject: str, closed_by: str) -> Window | None:
    try:
        window = book(ctx).close(subject)
    except WindowError as exc:
        raise RemediationError(str(exc)) from None
    if window:
        audit.append(ctx.audit_path, audit.record(closed_by, subject, "maintenance window closed", None))
    return window


def maintenance(ctx: Context, argument: str | None, apply: bool) -> int:
    request: WindowRequest = ctx.window_request or WindowRequest()
    where = book(ctx).path
    if argument is None:
        if request.duration or request.reason or request.end:
            raise RemediationError("name the engine or service: maintenance TARGET --for 2h --reason TEXT, "
                                   "or maintenance TARGET --end")
        try:
            windows = book(ctx).active()
        except WindowError as exc:
            raise RemediationError(str(exc)) from None
        ctx.say(f"maintenance windows open now ({where}): {len(windows)}")
        for window in windows.values():
            ctx.say(f"{window.name}: {window.line()}, since {window.since}")
        return 0
    try:
        subject = subject_of(ctx.inventory, argument)
    except WindowError as exc:
        raise RemediationError(str(exc)) from None
    name = subject.split(":", 1)[1]
    if request.end:
        if request.duration or request.reason:
            raise RemediationError("--end closes the window: it takes no --for or --reason")
        if not apply:
            ctx.say(f"dry run of maintenance {name} --end; with --apply it would close the window of {name} in "
                    f"{where}, so its checks judge it again from the next run")
            ctx.say("dry run: nothing changed; add --apply to do it")
            return 0
        closed = close_window(ctx, subject, "maintenance --end")
        ctx.say(f"closed the window of {name} ({closed.line()})" if closed else f"{name} had no open window")
        return 0
    if not request.duration or not request.reason:
        raise RemediationError("a window needs both --for (e.g. 2h) and --reason (what is being done)")
    try:
        duration = parse_duration(request.duration)
    except WindowError as exc:
        raise RemediationError(str(exc)) from None
    if duration > MAX_WINDOW:
        raise RemediationError(f"--for {request.duration}: at most 7 days; open another window when it ends")
    until = now_utc() + duration
    preview = Window(subject, request.reason, "maintenance", "", until.isoformat(timespec="seconds"))
    if not apply:
        ctx.say(f"dry run of maintenance {name}; with --apply it would:")
        ctx.say(f"1. open a window in {where}: {name} {preview.line()}")
        ctx.say(f"2. from then on every check of {name} reports it instead of judging (no exit 1, no page, "
                "no 0 series), until the window ends by itself or `maintenance "
                f"{argument} --end --apply` closes it")
        ctx.say(f"3. append it to the audit log {ctx.audit_path}")
        ctx.say("dry run: nothing changed; add --apply to do it")
        return 0
    audit.ensure_writable(ctx.audit_path)
    window = open_window(ctx, subject, request.reason, "maintenance", until)
    ctx.say(f"opened: {name} {window.line()}")
    ctx.say(f"end it early with: {command(ctx, argument, '--end', '--apply')}")
    return 0
