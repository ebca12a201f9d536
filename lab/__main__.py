"""`python -m lab`: bring the reference stack up or down and inject faults."""
from __future__ import annotations

import argparse
import sys

from . import LabError, faults, processes, stack
from .base_image import ensure_base_image
from .compose import passthrough
from .docker_engine import ensure_docker
from .maintenance import backup


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["compose"]:  # before argparse, which would take compose's own options for its own
        try:
            return passthrough(argv[1:])
        except LabError as exc:
            print(f"lab: {exc}", file=sys.stderr)
            return 2
    parser = argparse.ArgumentParser(prog="python -m lab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start everything and wait until healthy")
    up.add_argument("--rebuild-image", action="store_true", help="rebuild the base image even if present")
    down = sub.add_parser("down", help="stop and remove containers and network")
    down.add_argument("--volumes", action="store_true", help="also delete the PostgreSQL and Redis volumes")
    sub.add_parser("status", help="one line per lab container")
    sub.add_parser("check", help="refuse (exit 2) when the Docker endpoint holds platform-looking objects the lab "
                                 "did not create; starts nothing")
    sub.add_parser("backup", help="write a PostgreSQL backup to lab/.state/backups now")
    sub.add_parser("image", help="build the base image if missing")
    fault = sub.add_parser("fault", help="inject a fault")
    fault.add_argument("kind")
    fault.add_argument("target", help="engine (risk), service (redis), container name, or host")
    fault.add_argument("--ms", type=int, help="delay for slow")
    fault.add_argument("--count", type=int, help="lines for error-burst and slow-log; connections for ws-connections")
    fault.add_argument("--text", help="known-error: one of the knowledge base's error texts; hostile: the secret to plant; "
                                           "hostile-body: not-json, huge, nested, wrong-types, bad-utf8, bad-metrics, long-log")
    fault.add_argument("--code", type=int, help="exit status for exit")
    fault.add_argument("--mb-per-s", type=float, dest="mb_per_s", help="growth rate for leak")
    fault.add_argument("--max-mb", type=float, dest="max_mb", help="cap for leak")
    redeploy = sub.add_parser("redeploy", help="recreate services as a deploy does (new containers), then wait "
                                               "until healthy")
    redeploy.add_argument("targets", nargs="*", help="engines or services (default: all)")
    redeploy.add_argument("--no-wait", action="store_true", help="return at once, while they are still starting")
    redeploy.add_argument("--start-delay", type=float, default=0, metavar="SECONDS",
                          help="the recreated engines wait this long before they listen (a slow real start)")
    heal = sub.add_parser("heal", help="clear faults and wait until healthy")
    heal.add_argument("target", nargs="?")
    sub.add_parser("faults", help="list active engine faults")
    procs = sub.add_parser("processes", help="lab engines as plain processes on this machine (lab/processes.py)")
    procs.add_argument("action", choices=("up", "down", "status", "kill", "heal", "fault"))
    procs.add_argument("engine", nargs="?", help="kill, heal, fault: one of them (heal: all when none)")
    procs.add_argument("--kind", help="fault: an engine fault (idle-bus, error-burst, conn-churn, ...)")
    procs.add_argument("--count", type=int, help="fault: lines for error-burst, connections a second for conn-churn")
    sub.add_parser("compose", help="run the lab's Docker Compose with its environment: compose ARGS... "
                                   "(the inventory's compose_command)")
    args = parser.parse_args(argv)

    try:
        if args.command == "up":
            stack.up(rebuild_image=args.rebuild_image)
        elif args.command == "down":
            stack.down(volumes=args.volumes)
        elif args.command == "check":
            print(stack.check_endpoint())
        elif args.command == "status":
            print("\n".join(stack.status_lines()) or "the lab is not up")
        elif args.command == "backup":
            stack.require_running()
            print(backup())
        elif args.command == "image":
            ensure_docker()
            print(ensure_base_image(stack.client()))
        elif args.command == "fault":
            print(faults.inject(args.kind, args.target, ms=args.ms, count=args.count,
                                mb_per_s=args.mb_per_s, max_mb=args.max_mb, text=args.text, code=args.code))
        elif args.command == "redeploy":
            print(stack.redeploy(args.targets, wait=not args.no_wait, start_delay_s=args.start_delay))
        elif args.command == "heal":
            print("\n".join(faults.heal(args.target)) or "nothing to heal")
        elif args.command == "processes":
            print("\n".join(_processes(args)))
        elif args.command == "faults":
            for name, active in faults.active_faults().items():
                print(f"{name}: {', '.join(active)}")
    except LabError as exc:
        print(f"lab: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


def _processes(args) -> list[str]:
    if args.action == "up":
        return processes.up()
    if args.action == "down":
        return processes.down()
    if args.action == "status":
        return processes.status_lines()
    if args.action == "heal" and not args.engine:
        return [processes.heal(engine) for engine in processes.ENGINES]
    if not args.engine:
        raise LabError(f"processes {args.action} needs an engine: {', '.join(e.name for e in processes.ENGINES)}")
    engine = processes.find(args.engine)
    if args.action == "kill":
        return [processes.kill(engine)]
    if args.action == "heal":
        return [processes.heal(engine)]
    if not args.kind:
        raise LabError("processes fault needs --kind")
    return [str(processes.fault(engine, args.kind, count=args.count))]


if __name__ == "__main__":
    sys.exit(main())
