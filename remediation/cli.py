"""The command line: `python -m remediation HELPER [TARGET] [--apply] [--yes] [--inventory PATH] [--bundle-dir DIR]`.

Exit status: 0 done (or a dry run, or nothing to do); 1 an action was taken but
its container did not become ready; 2 refused or failed (bad helper, target or
inventory, Docker daemon down, no confirmation), always with one line on
stderr and never a traceback; 130 interrupted.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Callable, Mapping, TextIO

from .errors import FAILURES, RemediationError, describe
from .registry import HELPERS

USAGE = ("python -m remediation {list | HELPER [TARGET]} [--apply] [--yes] [--inventory PATH] [--state-dir DIR] "
         "[--bundle-dir DIR] [--for DURATION --reason TEXT | --end]")
PROMPT = "Type {} to confirm: "  # the word: a container, the Compose project, or the Docker host


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not argparse's usage block
        raise UsageError(f"{message}; usage: {USAGE}")


def helper_table() -> str:
    """One line per helper: name, target kind, kind, summary."""
    return "\n".join(f"{h.name:18} {('<' + h.target + '>') if h.target else '-':12} {h.kind:11} {h.summary}"
                     for h in HELPERS.values())


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m remediation", usage=USAGE, formatter_class=argparse.RawDescriptionHelpFormatter,
                     description="Remediation helpers from the troubleshooting guide, made safe: every one is a dry "
                                 "run without --apply; disruptive ones ask for the container name and save "
                                 "diagnostics first; unconfined ones (acting on what the platform does not own) "
                                 "ask too; nothing is ever killed, no volume is ever pruned.",
                     epilog="helpers (name, target, kind, what it does):\n" + helper_table())
    parser.add_argument("helper", help="a helper name, or `list`")
    parser.add_argument("target", nargs="?", help="an engine name, a container (or engine/service) name, or a "
                                                  "port, as the helper takes; none for restart-redis/restart-postgres")
    parser.add_argument("--apply", action="store_true", help="really do it (default: dry run, prints the plan)")
    parser.add_argument("--yes", action="store_true",
                        help="confirm a disruptive or unconfined helper without being asked")
    parser.add_argument("--inventory", metavar="PATH",
                        help="deployment inventory (default: $NAUTILUS_INVENTORY, else the guide's topology)")
    parser.add_argument("--state-dir", metavar="DIR",
                        help="where the runs keep their state and maintenance windows (default: the inventory's "
                             "state_dir, else reports/out/state); as the check run's --state-dir")
    window = parser.add_argument_group("maintenance windows (the `maintenance` helper only)")
    window.add_argument("--for", dest="window_for", metavar="DURATION", help="how long the window lasts: 2h, 90m, 1d")
    window.add_argument("--reason", metavar="TEXT", help="what is being done, shown by every check it covers")
    window.add_argument("--end", action="store_true", help="close the target's window now")
    parser.add_argument("--bundle-dir", metavar="DIR", type=Path,
                        help="where the diagnostics bundle goes (default: "
                             "reports/out/bundles/<helper>-<target>-<YYYYmmdd-HHMMSS>/)")
    return parser


def terminal_confirm(stdin: TextIO, stderr: TextIO) -> Callable[[str, list[str]], None]:
    """Ask the person at the terminal to type the name of what is acted on; refuse when there is no terminal."""
    def confirm(container: str, plan: list[str]) -> None:
        if not stdin.isatty():
            raise no_terminal(container)
        for line in plan:
            print(line, file=stderr)
        stderr.write(PROMPT.format(container))
        stderr.flush()
        if stdin.readline().strip() != container:
            raise RemediationError(f"the answer did not match {container}; nothing changed")
    return confirm


def no_terminal(container: str) -> RemediationError:
    return RemediationError(f"refusing to act on {container} without confirmation: stdin is not a terminal; "
                            "rerun with --yes to confirm")


def main(argv: list[str] | None = None, *, docker_factory: Callable[[Any], Any] | None = None,
         stdin: TextIO | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None,
         environ: Mapping[str, str] | None = None) -> int:
    stdin, stdout, stderr = stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr
    environ = os.environ if environ is None else environ
    redact = None

    def fail(message: str, code: int = 2) -> int:
        line = " ".join(message.split())
        print(f"remediation: {redact(line) if redact else line}", file=stderr)
        return code

    ctx = None
    try:
        args = build_parser().parse_args(argv)
        if args.helper == "list":
            if args.target:
                raise UsageError(f"list takes no target (got {args.target!r})")
            print(helper_table(), file=stdout)
            return 0
        if args.helper not in HELPERS:
            raise UsageError(f"unknown helper {args.helper!r}; valid: {', '.join(HELPERS)} "
                             "(see `python -m remediation list`)")
        info = HELPERS[args.helper]
        # Imported here so that `list` and usage errors answer at once, without pydantic and the Docker SDK.
        from observation.inventory import InventoryError, load_inventory

        from .actions import ACTIONS
        from .context import Context, default_audit_path
        from .targets import resolve
        if args.helper != "maintenance" and (args.window_for or args.reason or args.end):
            raise UsageError("--for, --reason and --end belong to the maintenance helper")
        try:
            inventory = load_inventory(args.inventory, environ=environ)
        except InventoryError as exc:
            raise RemediationError(f"inventory: {exc}") from None
        if args.state_dir:
            inventory.state_dir = args.state_dir
        ctx = Context(inventory, out=lambda line: print(line, file=stdout, flush=True),
                      confirm=(lambda container, plan: None) if args.yes else terminal_confirm(stdin, stderr),
                      audit_path=default_audit_path(environ), bundle_dir=args.bundle_dir)
        if docker_factory:
            ctx.docker_factory = docker_factory
        from .windows import WindowRequest
        ctx.window_request = WindowRequest(args.window_for, args.reason, args.end)
        redact = ctx.redactor.redact_text
        if args.apply and info.needs_a_person and not args.yes and not stdin.isatty():
            # Before touching Docker; a helper with no target acts on more than one container.
            if not info.confined:
                what = f"what the platform does not own ({args.helper})"
            elif info.target or args.helper in ("restart-redis", "restart-postgres"):
                what = resolve(inventory, args.helper, args.target).container
            else:
                what = f"the platform ({args.helper})"
            raise no_terminal(what)
        if args.apply and info.read_only:
            print(f"remediation: {args.helper} is read-only; --apply changes nothing", file=stderr)
        return ACTIONS[args.helper](ctx, args.target, args.apply)
    except (UsageError, *FAILURES) as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        return fail("interrupted", 130)
    except Exception as exc:  # a bug or an unforeseen library error: still one line, never a traceback
        return fail(f"unexpected error: {type(exc).__name__}: {describe(exc)}")
    finally:
        if ctx:
            ctx.close()
