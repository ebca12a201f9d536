"""`python -m remediation HELPER [TARGET] [--apply] [--yes]`: run one remediation helper by hand."""
from __future__ import annotations

import argparse
import sys

from .registry import HELPERS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m remediation",
                                     description="Remediation helpers; every one is a dry run without --apply.")
    parser.add_argument("helper", help="a helper name, or `list`")
    parser.add_argument("target", nargs="?", help="engine, container or port, as the helper takes")
    parser.add_argument("--apply", action="store_true", help="really do it")
    parser.add_argument("--yes", action="store_true", help="skip the confirmation of a disruptive helper")
    parser.add_argument("--inventory", help="deployment inventory (default: $NAUTILUS_INVENTORY or the guide's)")
    args = parser.parse_args(argv)

    if args.helper == "list":
        for info in HELPERS.values():
            kind = "disruptive" if info.disruptive else "safe"
            print(f"{info.name:18} {('<' + info.target + '>') if info.target else '':12} {kind:10} {info.summary}")
        return 0
    if args.helper not in HELPERS:
        print(f"remediation: unknown helper {args.helper!r}; run `python -m remediation list`", file=sys.stderr)
        return 2
    info = HELPERS[args.helper]
    if info.target and not args.target:
        print(f"remediation: {args.helper} needs a <{info.target}> argument", file=sys.stderr)
        return 2

    from fixtures.inventory import InventoryError, load_inventory

    from .actions import ACTIONS, resolve_container
    from .context import Context, RemediationError
    try:
        ctx = Context(load_inventory(args.inventory))
        if args.apply and info.disruptive and not args.yes:
            confirm(resolve_container(ctx, args.helper, args.target))
        for line in ACTIONS[args.helper](ctx, args.target, args.apply):
            print(line)
    except (InventoryError, RemediationError) as exc:
        print(f"remediation: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


def confirm(container: str) -> None:
    from .context import RemediationError
    if not sys.stdin.isatty():
        raise RemediationError("refusing a disruptive action without a terminal to confirm it: rerun with --yes")
    if input(f"Type the container name to confirm ({container}): ").strip() != container:
        raise RemediationError("not confirmed; nothing changed")


if __name__ == "__main__":
    sys.exit(main())
