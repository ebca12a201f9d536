"""The command line: `bin/nautilus-remediation HELPER [TARGET] [--apply] [--yes] [--inventory=PATH] [--bundle-dir=DIR]`.

`list` shows the helpers, the read-only ones to look with first, then those
that act; `HELPER --help` explains one: its target, what it reads, what it
changes, its kind and an example.

Exit status: 0 done (or a dry run, or nothing to do); 1 an action was taken but
its container did not become ready; 2 refused or failed (bad helper, target or
inventory, Docker daemon down, no confirmation), always with one line on
stderr and never a traceback; 130 interrupted.
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from typing import Any, Callable, Mapping, TextIO

from .errors import FAILURES, RemediationError, describe
from .invocation import ENTRY, render
from .registry import GROUPS, HELPERS, KIND_MEANING, TARGETS, close_match

USAGE = (f"{ENTRY} {{list | HELPER [TARGET]}} [--apply] [--yes] [--inventory=PATH] [--state-dir=DIR] "
         "[--bundle-dir=DIR] [--for DURATION --reason TEXT | --end]; HELPER --help explains one")
USAGE_ERROR = 2  # argparse's, kept for every usage error (an unknown helper too)
PROMPT = "Type {} to confirm: "  # the word: a container, the Compose project, or the Docker host


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not argparse's usage block
        raise UsageError(f"{message}; usage: {USAGE}")


GROUP_TITLES = {"look first": "look first (read-only: they only look, whatever the flags)",
                "act": "act (a dry run without --apply)"}


def helper_table() -> str:
    """The helpers by group, look first then act; one line each: name, target kind, kind, summary."""
    lines = []
    for group in GROUPS:
        lines.append(f"{GROUP_TITLES[group]}:")
        lines += [f"  {h.name:18} {('<' + h.target + '>') if h.target else '-':12} {h.kind:11} {h.summary}"
                  for h in HELPERS.values() if h.group == group]
    return "\n".join(lines)


def helper_help(name: str) -> str:
    """What a person needs before running one helper."""
    h = HELPERS[name]
    example = render(shlex.split(h.example))
    target = f"<{h.target}>: {TARGETS[h.target]}" if h.target else "none"
    lines = [f"{h.name}: {h.summary}", "",
             f"target:   {target}",
             f"reads:    {h.reads}",
             f"changes:  {h.changes}",
             f"kind:     {h.kind}: {KIND_MEANING[h.kind]}",
             f"example:  {example}" + ("" if h.read_only else "   (dry run; add --apply to act)"),
             "", "options:  --inventory=PATH (the deployment; default $NAUTILUS_INVENTORY, else the guide's topology), "
             "--state-dir=DIR" + ("" if h.read_only else ", --apply, --yes (confirms without asking)")
             + (", --bundle-dir=DIR" if h.disruptive else "")
             + (", --for DURATION --reason TEXT, --end" if h.name == "maintenance" else "")]
    if h.unattended:
        lines.append("unattended: `pytest --remediate` runs it with --apply for the failed checks it fixes")
    return "\n".join(lines)


def unknown_helper(name: str) -> UsageError:
    guess = close_match(name)
    hint = f"; did you mean {guess}?" if guess else ""
    return UsageError(f"unknown helper {name!r}{hint} (every helper: {render(['list'])})")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=str(ENTRY), usage=USAGE, formatter_class=argparse.RawDescriptionHelpFormatter,
                     description="Remediation helpers from the troubleshooting guide, made safe: every one is a dry "
                                 "run without --apply; disruptive ones ask for the container name and save "
                                 "diagnostics first; unconfined ones (acting on what the platform does not own) "
                                 "ask too; nothing is ever killed, no volume is ever pruned.",
                     epilog="helpers (name, target, kind, what it does; HELPER --help explains one):\n"
                            + helper_table())
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

    def fail(message: str, code: int = USAGE_ERROR) -> int:
        line = " ".join(message.split())
        print(f"remediation: {redact(line) if redact else line}", file=stderr)
        return code

    ctx = None
    try:
        words = sys.argv[1:] if argv is None else list(argv)
        if words and not words[0].startswith("-") and any(w in ("-h", "--help") for w in words):
            if words[0] not in HELPERS and words[0] != "list":
                raise unknown_helper(words[0])
            if words[0] in HELPERS:
                print(helper_help(words[0]), file=stdout)
                return 0
        args = build_parser().parse_args(words)
        if args.helper == "list":
            if args.target:
                raise UsageError(f"list takes no target (got {args.target!r})")
            print(helper_table(), file=stdout)
            return 0
        if args.helper not in HELPERS:
            raise unknown_helper(args.helper)
        info = HELPERS[args.helper]
        # Imported here so that `list` and usage errors answer at once, without pydantic and the Docker SDK.
        from observation.inventory import InventoryError, load_inventory

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
                      audit_path=default_audit_path(environ), bundle_dir=args.bundle_dir,
                      inventory_path=args.inventory or environ.get("NAUTILUS_INVENTORY") or None,
                      state_dir_path=args.state_dir)
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
        return info.run(ctx, args.target, args.apply)
    except (UsageError, *FAILURES) as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        return fail("interrupted", 130)
    except BrokenPipeError:  # the reader went away (`| head`): what it wanted was printed; Python must not complain
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # a bug or an unforeseen library error: still one line, never a traceback
        return fail(f"unexpected error: {type(exc).__name__}: {describe(exc)}")
    finally:
        if ctx:
            ctx.close()
