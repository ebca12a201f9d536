"""The guide's maintenance as helpers: VACUUM ANALYZE, BGREWRITEAOF, log rotation, Docker cleanup.

Each is a dry run without --apply, acts with --apply and writes one audit line
per applied run. None stops anything or loses the platform's data; the first
three act only on the platform's own objects, so they ask nothing (and
`pytest --remediate` runs them); docker-cleanup does not, so it asks a person:
- vacuum-analyze runs plain VACUUM (never FULL), which takes a SHARE UPDATE
  EXCLUSIVE lock: reads and writes go on; statement and lock timeouts bound it;
- redis-rewrite-aof asks Redis for BGREWRITEAOF: a forked child writes the new
  AOF while Redis serves, and the old AOF stays until the new one is complete;
- rotate-logs gzips old *.log directly in log_dir (atomically: the log goes only
  after its .gz is on disk and verified) and deletes expired *.log/*.log.gz;
  never a symlink, never a subfolder, never the backup folder;
- docker-cleanup removes stopped containers that are not the platform's (their
  volumes kept), untagged images no remaining container uses, and the platform's
  own networks that no container uses (of its compose project or named like it;
  never Docker's bridge, host or none); never a platform container, never a
  volume, never build cache in use. What it removes may be another team's (a
  stopped job kept for its logs), so its plan names each with its owner labels
  and --apply asks for the Docker host's name.

Each picks its work with the code the matching check judges with, so what the
check flags is what the helper fixes (`pytest --remediate` relies on it).
"""
from __future__ import annotations

import gzip
import hashlib
import os
import re
import stat
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
import redis
from psycopg import sql

from observation.host_facts import reclaimable
from observation.maintenance import FileEntry, LogRotation, sample_log_rotation
from observation.postgres import connect_postgres
from observation.postgres_stats import bloated_tables, dead_ratio_pct, overdue_tables, postgres_stats
from observation.redis_bus import connect_redis

from .context import Context
from .errors import ContainerMissing, RemediationError, Unobservable, describe, short_reason
from .sequence import SAFE_NOTE, Action, carry_out, dry_run, numbered
from .targets import platform_containers


VACUUM_STATEMENT_TIMEOUT_S = 600  # one table's (or the database's) VACUUM ANALYZE is cancelled after this long
VACUUM_LOCK_TIMEOUT_S = 10  # VACUUM waits this long for a table someone holds exclusively, then skips it
AOF_REWRITE_WAIT_S = 120  # how long to wait for a BGREWRITEAOF to finish
AOF_POLL_S = 0.5
GZIP_CHUNK = 1 << 20
GIB = 1024 ** 3

# Seams for the unit tests: connections and the host the log folder is listed on.
postgres_connect = connect_postgres
redis_connect = connect_redis


def local_host():
    import testinfra
    return testinfra.get_host("local://")


def _dry_run(ctx: Context, header: str, plan: list[str]) -> int:
    return dry_run(ctx, header, numbered(plan), SAFE_NOTE)


def _failed(exc: BaseException) -> str:
    return f"failed: {type(exc).__name__}: {describe(exc)}"


def _safe(helper: str, where: str, plan: list[str]) -> Action:
    """A confined maintenance run: no question, no bundle (nothing is stopped or lost)."""
    return Action(helper, where, numbered(plan), left_as=_failed)


def _no_argument(helper: str, argument: str | None) -> None:
    if argument:
        raise RemediationError(f"{helper}: takes no target (got {argument!r})")


def _human(size: float) -> str:
    """
    >>> _human(5_000_000), _human(3 * 1024 ** 3), _human(0)
    ('4.8 MB', '3.00 GB', '0 B')
    """
    if size >= GIB:
        return f"{size / GIB:.2f} GB"
    if size >= 1024 ** 2:
        return f"{size / 1024 ** 2:.1f} MB"
    return f"{size / 1024:.1f} KB" if size >= 1024 else f"{size:.0f} B"


# -- vacuum-analyze -------------------------------------------------------------------------------

def vacuum_targets(stats, thresholds) -> dict[str, str]:
    """The tables postgres-dead-tuples and postgres-vacuum-recent flag, each with why."""
    found = {t["name"]: f"{dead_ratio_pct(t):g} % dead ({t['dead']} of {t['live'] + t['dead']} rows)"
             for t in bloated_tables(stats.tables, thresholds.db_dead_tuples_max_pct)}
    for name, overdue in overdue_tables(stats.tables, thresholds.db_vacuum_max_age_days,
                                        stats.stats_window_days).items():
        found[name] = "; ".join(filter(None, (found.get(name), ", ".join(overdue))))
    return found


def vacuum_statement(table: str | None) -> sql.Composable:
    """Plain VACUUM (ANALYZE): never FULL, which rewrites the table under an ACCESS EXCLUSIVE lock.

    >>> vacuum_statement("public.lab_bloat")
    Composed([SQL('VACUUM (ANALYZE) '), Identifier('public', 'lab_bloat')])
    """
    if table is None:
        return sql.SQL("VACUUM (ANALYZE)")
    return sql.SQL("VACUUM (ANALYZE) ") + sql.Identifier(*table.split(".", 1))


def _dead(stats) -> dict[str, int]:
    return {t["name"]: t["dead"] for t in stats.tables}


def vacuum_analyze(ctx: Context, argument: str | None, apply: bool) -> int:
    inventory = ctx.inventory
    conn = postgres_connect(inventory)
    try:
        before = postgres_stats(conn, inventory.thresholds.slow_query_ms)
        flagged = vacuum_targets(before, inventory.thresholds)
        known = {t["name"] for t in before.tables}
        if argument:
            if argument not in known:
                raise RemediationError(f"vacuum-analyze: {argument!r} is not a table of {before.database}; valid: "
                                       f"{', '.join(sorted(known)) or 'none'} (or no target: the flagged tables)")
            tables: list[str | None] = [argument]
            reasons = {argument: flagged.get(argument, "named on the command line")}
        elif flagged:
            tables, reasons = list(flagged), flagged
        else:
            tables, reasons = [None], {None: "no table is flagged by postgres-dead-tuples or postgres-vacuum-recent"}
        where = f"database {before.database} at {inventory.postgres.host}:{inventory.postgres.port}"
        plan = [f"SET statement_timeout = {VACUUM_STATEMENT_TIMEOUT_S} s and lock_timeout = {VACUUM_LOCK_TIMEOUT_S} s"
                " (a VACUUM that waits for a lock or runs too long is cancelled; never VACUUM FULL: it locks)"]
        plan += [f"VACUUM (ANALYZE) {table or 'the whole database ' + before.database}: {reasons[table]}"
                 for table in tables]
        plan += ["read pg_stat_user_tables again and show dead rows before -> after",
                 f"append the outcome to the audit log {ctx.audit_path}"]
        if not apply:
            return _dry_run(ctx, f"vacuum-analyze on {where}", plan)
        done, failed = [], []

        def act(bundle) -> tuple[str, int]:
            with conn.cursor() as cur:
                cur.execute(f"SET statement_timeout = '{VACUUM_STATEMENT_TIMEOUT_S}s'")
                cur.execute(f"SET lock_timeout = '{VACUUM_LOCK_TIMEOUT_S}s'")
                for table in tables:
                    label, started = table or f"database {before.database}", ctx.clock()
                    try:
                        cur.execute(vacuum_statement(table))
                        done.append(f"{label} in {ctx.clock() - started:.1f} s")
                    except psycopg.errors.QueryCanceled as exc:
                        failed.append(f"{label}: cancelled ({' '.join(str(exc).split())[:120]})")
                    except psycopg.Error as exc:
                        failed.append(f"{label}: {' '.join(str(exc).split())[:160]}")
            after = _dead(postgres_stats(conn, inventory.thresholds.slow_query_ms))
            dead_before = _dead(before)
            for table in (t for t in tables if t):
                ctx.say(f"{table}: dead rows {dead_before.get(table, '?')} -> {after.get(table, '?')}")
            return (f"VACUUM ANALYZE done: {', '.join(done) or 'nothing'}"
                    + (f"; failed: {'; '.join(failed)}" if failed else "")), 1 if failed else 0
        return carry_out(ctx, _safe("vacuum-analyze", where, plan), act)
    except psycopg.Error as exc:
        raise Unobservable(f"PostgreSQL: {' '.join(str(exc).split())[:200]}") from None
    finally:
        conn.close()


# -- redis-rewrite-aof ----------------------------------------------------------------------------

def _rewriting(info: dict) -> bool:
    return bool(info.get("aof_rewrite_in_progress") or info.get("aof_rewrite_scheduled"))


def redis_rewrite_aof(ctx: Context, argument: str | None, apply: bool) -> int:
    _no_argument("redis-rewrite-aof", argument)
    spec = ctx.inventory.redis
    where = f"Redis {spec.host}:{spec.port}"
    client = redis_connect(ctx.inventory)
    try:
        info = client.info("persistence")
        if not info.get("aof_enabled"):
            ctx.say(f"{where}: AOF is off (appendonly no): there is no AOF to rewrite; nothing to do "
                    f"(rdb_last_bgsave_status is {info.get('rdb_last_bgsave_status')})")
            return 0
        state = (f"AOF on, {_human(info.get('aof_current_size') or 0)}, aof_last_bgrewrite_status "
                 f"{info.get('aof_last_bgrewrite_status')}, aof_last_write_status {info.get('aof_last_write_status')}")
        running = _rewriting(info)
        start = ("a rewrite is already running: start none, only wait for it" if running else
                 "BGREWRITEAOF: a forked child writes a compact AOF while Redis keeps serving; the old AOF stays "
                 "until the new one is complete")
        plan = [start, f"wait up to {AOF_REWRITE_WAIT_S} s (every {AOF_POLL_S:g} s) until aof_rewrite_in_progress"
                       " and aof_rewrite_scheduled are 0",
                "report aof_last_bgrewrite_status", f"append the outcome to the audit log {ctx.audit_path}"]
        if running:
            ctx.say(f"{where}: an AOF rewrite is already running")
        if not apply:
            return _dry_run(ctx, f"redis-rewrite-aof on {where} ({state})", plan)

        def act(bundle) -> tuple[str, int]:
            if not running:
                try:
                    ctx.say(f"BGREWRITEAOF: {client.bgrewriteaof()}")
                except redis.ResponseError as exc:  # one started between INFO and now
                    if "already in progress" not in str(exc):
                        raise
                    ctx.say("an AOF rewrite started meanwhile: waiting for it")
            started = ctx.clock()
            while _rewriting(info := client.info("persistence")):
                if ctx.clock() - started >= AOF_REWRITE_WAIT_S:
                    break
                ctx.sleep(AOF_POLL_S)
            elapsed = ctx.clock() - started
            status = info.get("aof_last_bgrewrite_status")
            if _rewriting(info):
                return f"the AOF rewrite is still running after {elapsed:.0f} s; see INFO persistence later", 1
            return (f"AOF rewrite finished after {elapsed:.1f} s: aof_last_bgrewrite_status {status}, "
                    f"AOF {_human(info.get('aof_current_size') or 0)}"), 0 if status == "ok" else 1
        return carry_out(ctx, _safe("redis-rewrite-aof", where, plan), act)
    except redis.RedisError as exc:
        raise Unobservable(f"{where}: {short_reason(exc)}") from None
    finally:
        client.close()


# -- rotate-logs ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class RotationWork:
    compress: list[FileEntry]
    delete: list[FileEntry]


def rotation_work(found: LogRotation) -> RotationWork:
    """What the logs-rotated check flags, plus expired archives: gzip the old *.log, delete the expired files."""
    return RotationWork(list(found.uncompressed), list(found.expired) + list(found.expired_archives))


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _still_a_platform_log(path: Path, log_dir: Path, backup_dir: Path, suffixes: tuple[str, ...]) -> str | None:
    """Why `path` must be left alone, checked again right before acting (the folder may have changed)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "gone meanwhile"
    if stat.S_ISLNK(st.st_mode):
        return "a symlink"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if path.parent.resolve() != log_dir:
        return "not directly in the log folder"
    if _inside(path.resolve(), backup_dir):
        return "in the backup folder"
    if not path.name.endswith(suffixes):
        return "not a *.log / *.log.gz file"
    return None


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _gunzip_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with gzip.open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(GZIP_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def gzip_atomically(path: Path) -> Path:
    """path -> path.gz: written as .gz.tmp, fsync'ed, renamed, read back; the log is removed only if it matches."""
    target, tmp = path.with_name(path.name + ".gz"), path.with_name(path.name + ".gz.tmp")
    if target.exists() or tmp.exists():
        raise RemediationError(f"{target.name} (or its .tmp) already exists; {path.name} left as is")
    st = os.lstat(path)
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as src, open(tmp, "xb") as raw:  # x: never overwrite anything
            with gzip.GzipFile(filename=path.name, mode="wb", fileobj=raw, mtime=int(st.st_mtime)) as zipped:
                for chunk in iter(lambda: src.read(GZIP_CHUNK), b""):
                    digest.update(chunk)
                    zipped.write(chunk)
            raw.flush()
            os.fsync(raw.fileno())
        os.utime(tmp, (st.st_atime, st.st_mtime))  # the archive keeps the log's age: deletion counts from it
        os.link(tmp, target)  # a rename that refuses to replace a .gz created meanwhile
        os.unlink(tmp)
        _fsync_dir(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    now = os.lstat(path)
    if _gunzip_digest(target) != digest.hexdigest() or (now.st_size, now.st_mtime) != (st.st_size, st.st_mtime):
        target.unlink()
        raise RemediationError(f"{target.name} did not verify (or {path.name} changed meanwhile); removed it, "
                               f"{path.name} kept")
    path.unlink()
    _fsync_dir(path.parent)
    return target


def rotate_logs(ctx: Context, argument: str | None, apply: bool, host=None, now: float | None = None) -> int:
    _no_argument("rotate-logs", argument)
    inventory, t = ctx.inventory, ctx.inventory.thresholds
    if inventory.hosts[0].ssh:
        raise RemediationError(f"rotate-logs acts on this machine's files; log_dir is on {inventory.hosts[0].ssh}: "
                               "run the helper there")
    log_dir, backup_dir = Path(inventory.log_dir).resolve(), Path(inventory.backup_dir).resolve()
    if _inside(log_dir, backup_dir):
        raise RemediationError(f"log_dir {log_dir} is inside backup_dir {backup_dir}: refusing to touch backups")
    now = time.time() if now is None else now
    found = sample_log_rotation(host or local_host(), str(log_dir), t.log_compress_after_days,
                                t.log_delete_after_days, now=now)
    if not isinstance(found, LogRotation):
        raise RemediationError(f"cannot list {log_dir}: {found.reason}")
    if not found.exists:
        ctx.say(f"no log folder {log_dir} (is log_dir right in the inventory?); nothing to do")
        return 0
    work = rotation_work(found)
    age = lambda f: f"{f.age_days(now):g} days"  # noqa: E731
    plan = [f"gzip {f.path} ({age(f)}, {_human(f.size)}) -> .gz.tmp, fsync, rename to .gz, read it back; remove the "
            f".log only when the .gz verifies" for f in work.compress]
    plan += [f"delete {f.path} ({age(f)}, older than {t.log_delete_after_days:g} days)" for f in work.delete]
    header = (f"rotate-logs in {log_dir} (files directly in it only; never symlinks, subfolders or the backup "
              f"folder {backup_dir})")
    if not plan:
        ctx.say(f"{header}: no *.log older than {t.log_compress_after_days:g} days and nothing older than "
                f"{t.log_delete_after_days:g} days; nothing to do")
        return 0
    if not apply:
        return _dry_run(ctx, header, plan + [f"append the outcome to the audit log {ctx.audit_path}"])
    compressed, deleted, kept = [], [], []

    def act(bundle) -> tuple[str, int]:
        for entry in work.compress:
            path = Path(entry.path)
            why = _still_a_platform_log(path, log_dir, backup_dir, (".log",))
            try:
                if why:
                    raise RemediationError(f"{path.name} is {why}; left as is")
                compressed.append(gzip_atomically(path).name)
            except (RemediationError, OSError) as exc:
                kept.append(str(exc) if isinstance(exc, RemediationError) else f"{path.name}: {describe(exc)}")
        for entry in work.delete:
            path = Path(entry.path)
            why = _still_a_platform_log(path, log_dir, backup_dir, (".log", ".log.gz"))
            if not why and now - os.lstat(path).st_mtime <= t.log_delete_after_days * 86400:
                why = "written to meanwhile"
            if why:
                kept.append(f"{path.name} is {why}; left as is")
                continue
            try:
                path.unlink()
                deleted.append(path.name)
            except OSError as exc:
                kept.append(f"{path.name}: {describe(exc)}")
        return (f"compressed {len(compressed)} ({', '.join(compressed) or '-'}), deleted {len(deleted)} "
                f"({', '.join(deleted) or '-'})" + (f"; left alone: {'; '.join(kept)}" if kept else "")), \
            1 if kept else 0
    return carry_out(ctx, _safe("rotate-logs", str(log_dir), plan), act)


# -- docker-cleanup -------------------------------------------------------------------------------

STOPPED = ("exited", "dead")  # `created` is left: it may be a container being started right now
COMPOSE_OWNER = ("com.docker.compose.project", "com.docker.compose.service")
# Keys that say whose an object is; `app` only at a word's start (not `wrapper`, `mapping`).
OWNER_KEY = re.compile(r"owner|team|maintainer|vendor|author|(?<![a-z])app", re.IGNORECASE)
OWNER_LABELS_SHOWN = 6  # per object: a plan line stays readable whatever an image was built with
OWNER_VALUE_CHARS = 40


def _untagged(image: dict) -> bool:
    return not [tag for tag in image.get("RepoTags") or [] if tag != "<none>:<none>"]


def _container_name(summary: dict) -> str:
    return (summary.get("Names") or ["/" + summary.get("Id", "?")[:12]])[0].lstrip("/")


def owner_labels(summary: dict) -> str:
    """The labels that tell a person whose a container or image is, from its `docker system df` entry.

    >>> owner_labels({"Labels": {"com.docker.compose.service": "job", "com.docker.compose.project": "batch",
    ...                          "team": "risk", "version": "2"}})
    'owner labels: com.docker.compose.project=batch, com.docker.compose.service=job, team=risk'
    >>> owner_labels({"Labels": {"wrapper": "x"}}), owner_labels({"Labels": None}), owner_labels({})
    ('no owner labels', 'no owner labels', 'labels not listed by docker system df')
    """
    if "Labels" not in summary:  # an older daemon's df; asking per image would be a call per object
        return "labels not listed by docker system df"
    labels = summary["Labels"] or {}
    keys = [k for k in COMPOSE_OWNER if k in labels]
    keys += sorted(k for k in labels if k not in COMPOSE_OWNER and OWNER_KEY.search(k))
    if not keys:
        return "no owner labels"
    shown = [f"{k}={str(labels[k])[:OWNER_VALUE_CHARS]}" for k in keys[:OWNER_LABELS_SHOWN]]
    more = f", and {len(keys) - OWNER_LABELS_SHOWN} more" if len(keys) > OWNER_LABELS_SHOWN else ""
    return "owner labels: " + ", ".join(shown) + more


@dataclass(frozen=True)
class CleanupWork:
    containers: list[dict]  # stopped, not the platform's
    images: list[dict]  # untagged, used by no container that stays
    kept_platform: list[str]  # stopped platform containers, named so nobody wonders


def cleanup_work(df: dict, platform: set[str], project: str) -> CleanupWork:
    """What docker-cleanup removes, from one `docker system df`.

    A platform container is one the inventory names, one of the compose project
    (label com.docker.compose.project) or one named like the project's (`nautilus-*`).
    """
    def is_platform(c: dict) -> bool:
        name, labels = _container_name(c), c.get("Labels") or {}
        return (name in platform or labels.get("com.docker.compose.project") == project
                or name.startswith(project + "-"))

    stopped = [c for c in df.get("Containers") or [] if c.get("State") in STOPPED]
    removable = [c for c in stopped if not is_platform(c)]
    gone = {c.get("Id") for c in removable}
    used = {c.get("ImageID") for c in df.get("Containers") or [] if c.get("Id") not in gone}
    images = [i for i in df.get("Images") or [] if _untagged(i) and i.get("Id") not in used]
    return CleanupWork(removable, images, sorted(_container_name(c) for c in stopped if is_platform(c)))


DOCKER_NETWORKS = ("bridge", "host", "none")  # Docker's own networks: never removed


def _network_name(network: dict) -> str:
    return network.get("Name") or network.get("Id", "?")[:12]


def is_platform_network(network: dict, project: str) -> bool:
    """A network of the platform's compose project (its label) or named like the platform's (`nautilus_*`,
    `nautilus-*`); never one of Docker's own.

    >>> is_platform_network({"Name": "nautilus_default"}, "nautilus"), is_platform_network({"Name": "bridge"}, "nautilus")
    (True, False)
    >>> is_platform_network({"Name": "x", "Labels": {"com.docker.compose.project": "nautilus"}}, "nautilus")
    True
    >>> is_platform_network({"Name": "batch_default", "Labels": {"com.docker.compose.project": "batch"}}, "nautilus")
    False
    """
    name, labels = _network_name(network), network.get("Labels") or {}
    if name in DOCKER_NETWORKS or network.get("Driver") in ("host", "null"):
        return False
    return labels.get(COMPOSE_OWNER[0]) == project or name.startswith((project + "_", project + "-"))


def networks_named(containers: list[dict]) -> set[str]:
    """The networks these containers are configured on, running or stopped (a stopped one needs its network to
    start again), from their `docker system df` / `docker ps -a` summaries."""
    return {name for c in containers for name in ((c.get("NetworkSettings") or {}).get("Networks") or {})}


def unused_networks(networks: list[dict], staying: list[dict], project: str) -> list[dict]:
    """The platform's networks no container uses: none attached (`Containers` of `docker network inspect`, which
    `docker network ls` leaves empty) and none of the containers that stay configured on it.

    >>> nets = [{"Name": "nautilus_default", "Containers": {}}, {"Name": "nautilus_nautilus-network",
    ...          "Containers": {"ab12": {"Name": "nautilus-risk-engine"}}}, {"Name": "nautilus_old", "Containers": {}},
    ...         {"Name": "bridge", "Containers": {}}, {"Name": "other_default", "Containers": {}}]
    >>> stopped = [{"Names": ["/nautilus-ml-engine"], "NetworkSettings": {"Networks": {"nautilus_old": {}}}}]
    >>> [n["Name"] for n in unused_networks(nets, stopped, "nautilus")]
    ['nautilus_default']
    """
    named = networks_named(staying)
    return sorted((n for n in networks if is_platform_network(n, project) and not n.get("Containers")
                   and _network_name(n) not in named), key=_network_name)


def platform_networks(docker, project: str) -> list[dict]:
    """The platform's networks, each as `docker network inspect` shows it (with the containers attached)."""
    found = []
    for summary in docker._call("list networks", None, docker.api.networks) or []:
        if not is_platform_network(summary, project):
            continue
        try:
            found.append(docker._call(f"inspect network {_network_name(summary)}", None, docker.api.inspect_network,
                                      summary["Id"]))
        except Unobservable:  # removed meanwhile, or refused: not ours to act on this time
            continue
    return found


def _image_bytes(image: dict) -> int:
    size, shared = image.get("Size", 0) or 0, image.get("SharedSize", 0) or 0
    return max(size - max(shared, 0), 0)


def _figure(df: dict) -> str:
    found = reclaimable(df)
    return (f"{_human(found.total)} (images {_human(found.images)}, stopped containers {_human(found.containers)}, "
            f"build cache {_human(found.build_cache)})")


def docker_cleanup(ctx: Context, argument: str | None, apply: bool) -> int:
    _no_argument("docker-cleanup", argument)
    inventory = ctx.inventory
    docker = ctx.docker()
    df = docker.disk_usage()
    work = cleanup_work(df, set(platform_containers(inventory)), inventory.compose_project)
    going = {c.get("Id") for c in work.containers}
    staying = [c for c in df.get("Containers") or [] if c.get("Id") not in going]
    networks = unused_networks(platform_networks(docker, inventory.compose_project), staying,
                               inventory.compose_project)
    cache = reclaimable(df).build_cache
    freed = sum(c.get("SizeRw") or 0 for c in work.containers) + sum(_image_bytes(i) for i in work.images)
    ctx.say(f"Docker host {docker.host.name!r}: reclaimable as docker-disk-reclaimable counts it: {_figure(df)}")
    ctx.say(f"this helper would free about {_human(freed)} plus up to {_human(cache)} of unused build cache "
            "(tagged unused images are kept: pull or rebuild costs; remove them by hand with docker image rm)")
    if work.kept_platform:
        ctx.say(f"kept, platform containers though stopped: {', '.join(work.kept_platform)}")
    plan = [f"remove stopped container {_container_name(c)} ({c.get('State')}, image {c.get('Image')}, "
            f"{_human(c.get('SizeRw') or 0)}; {owner_labels(c)}) without its volumes (docker rm, never -v, never -f)"
            for c in work.containers]
    plan += [f"remove untagged image {i.get('Id', '')[:19]} ({_human(_image_bytes(i))}; {owner_labels(i)}), used "
             "by no container (docker image rm, never -f)" for i in work.images]
    plan += [f"remove unused network {_network_name(n)} ({n.get('Driver') or '?'} driver; the platform's by "
             f"{'its compose label' if (n.get('Labels') or {}).get(COMPOSE_OWNER[0]) else 'its name'}, no container "
             "attached or configured on it) (docker network rm)" for n in networks]
    plan += ["prune build cache not in use (docker builder prune: Docker keeps cache in use), never volumes",
             "read docker system df again and show the reclaimable figure after",
             f"append the outcome to the audit log {ctx.audit_path}"]
    host = docker.host.name
    if not apply:
        return dry_run(ctx, f"docker-cleanup on Docker host {host!r}", numbered(plan),
                       f" (you will be asked to type the Docker host name, {host}; --yes confirms)")
    removed, kept, kept_containers = [], [], []

    def act(bundle) -> tuple[str, int]:
        for c in work.containers:
            name = _container_name(c)
            try:
                docker._call(f"remove container {name}", name, docker.api.remove_container, c["Id"],
                             v=False, force=False)
                removed.append(name)
            except ContainerMissing:
                removed.append(f"{name} (already gone)")
            except Unobservable as exc:  # started meanwhile, or refused: kept
                kept.append(f"{name}: {exc}")
                kept_containers.append(c)
        for image in work.images:
            short = image.get("Id", "")[:19]
            try:
                docker._call(f"remove image {short}", short, docker.api.remove_image, image["Id"], force=False)
                removed.append(short)
            except Unobservable as exc:  # used by a container created meanwhile, or a parent of another image
                kept.append(f"{short}: {exc}")
        # A container that could not be removed still needs its networks.
        still_named = networks_named([c for c in work.containers if c in kept_containers])
        for network in networks:
            name = _network_name(network)
            if name in still_named:
                kept.append(f"{name}: a container kept above is configured on it")
                continue
            try:
                docker._call(f"remove network {name}", None, docker.api.remove_network, network["Id"])
                removed.append(f"network {name}")
            except Unobservable as exc:  # a container joined it meanwhile: Docker refuses, it stays
                kept.append(f"{name}: {exc}")
        pruned = docker._call("prune the build cache", None, docker.api.prune_builds) or {}
        after = docker.disk_usage()
        return (f"removed {len(removed)} ({', '.join(removed) or '-'}); build cache pruned "
                f"{_human(pruned.get('SpaceReclaimed') or 0)}; reclaimable now {_figure(after)}"
                + (f"; kept: {'; '.join(kept)}" if kept else "")), 1 if kept else 0
    # What goes may be another team's: a person reads the owners and confirms, whatever the caller.
    action = Action("docker-cleanup", f"docker:{host}", numbered(plan), confirm=host, left_as=_failed,
                    question=f"docker-cleanup will remove from Docker host {host!r} what the platform does not own:")
    return carry_out(ctx, action, act)

