"""The maintenance helpers without Docker, PostgreSQL or Redis: dry runs change nothing, --apply changes only what
the matching check flags, never a backup, a symlink, a platform container or a volume; --remediate's plan."""
from __future__ import annotations

import gzip
import io
import json
import os
import time
from pathlib import Path

import docker
import pytest

from fixtures.judgement import helper_fix
from fixtures.remediate import Failed, exit_status, plan
from observation.docker_api import Docker
from observation.inventory import DockerHost, load_inventory
from observation.maintenance import sample_log_rotation
from observation.postgres_stats import PostgresStats
from remediation import maintenance
from remediation.cli import PROMPT, main
from remediation.context import Context
from remediation.errors import RemediationError

ENV = {"NAUTILUS_POSTGRES_PASSWORD": "pw"}
DAY = 86400
HOST = maintenance.local_host()


def aged(path: Path, days: float) -> None:
    stamp = time.time() - days * DAY
    os.utime(path, (stamp, stamp), follow_symlinks=False)


def snapshot(folder: Path) -> dict:
    """Every entry under folder: kind, size, mtime and content (symlinks by target), to compare before and after."""
    found = {}
    for path in sorted(folder.rglob("*")):
        st = os.lstat(path)
        if path.is_symlink():
            found[str(path)] = ("link", os.readlink(path), st.st_mtime)
        elif path.is_file():
            found[str(path)] = ("file", path.read_bytes(), st.st_mtime)
        else:
            found[str(path)] = ("dir",)
    return found


def context(tmp_path: Path, **changes) -> tuple[Context, list[str]]:
    inventory = load_inventory(None, environ=ENV)
    for key, value in changes.items():
        setattr(inventory, key, value)
    said: list[str] = []
    ctx = Context(inventory, out=said.append, audit_path=tmp_path / "audit.log", sleep=lambda s: None)
    return ctx, said


def audit_lines(tmp_path: Path) -> list[dict]:
    path = tmp_path / "audit.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# -- rotate-logs -------------------------------------------------------------------------------------

@pytest.fixture
def log_folder(tmp_path):
    logs, backups, outside = tmp_path / "logs", tmp_path / "logs" / "backups", tmp_path / "outside"
    for folder in (logs, backups, outside):
        folder.mkdir(parents=True)
    files = {"week.log": 10, "ancient.log": 40, "ancient.log.gz": 45, "fresh.log": 1, "notes.txt": 60,
             "backups/nautilus_backup_20250101-000000.sql.gz": 60, "backups/dump.log": 60}
    for name, days in files.items():
        (logs / name).write_text(f"{name} line\n" * 50)
        aged(logs / name, days)
    (outside / "target.log").write_text("not ours\n")
    aged(outside / "target.log", 50)
    (logs / "linked.log").symlink_to(outside / "target.log")
    aged(logs / "linked.log", 50)
    return logs, backups, outside


def test_rotate_logs_dry_run_changes_nothing(tmp_path, log_folder):
    logs, backups, _ = log_folder
    ctx, said = context(tmp_path, log_dir=str(logs), backup_dir=str(backups))
    before = snapshot(tmp_path)
    assert maintenance.rotate_logs(ctx, None, apply=False, host=HOST) == 0
    assert snapshot(tmp_path) == before and audit_lines(tmp_path) == []
    text = "\n".join(said)
    assert f"1. gzip {logs}/week.log (10 days" in text
    assert f"delete {logs}/ancient.log (40 days" in text and f"delete {logs}/ancient.log.gz (45 days" in text
    assert "linked.log" not in text and "backups/" not in text.split("backup folder")[1].split("\n", 1)[1]
    assert said[-1].startswith("dry run: nothing changed")


def test_rotate_logs_apply_fixes_what_the_check_flags_and_nothing_else(tmp_path, log_folder):
    logs, backups, outside = log_folder
    ctx, said = context(tmp_path, log_dir=str(logs), backup_dir=str(backups))
    flagged = sample_log_rotation(HOST, str(logs), 7, 30)
    assert [Path(f.path).name for f in flagged.uncompressed + flagged.expired] == ["week.log", "ancient.log"]
    untouched = {k: v for k, v in snapshot(tmp_path).items()
                 if "/backups" in k or "/outside" in k or k.endswith(("linked.log", "fresh.log", "notes.txt"))}
    week_mtime = os.lstat(logs / "week.log").st_mtime

    assert maintenance.rotate_logs(ctx, None, apply=True, host=HOST) == 0, said
    after = snapshot(tmp_path)
    assert {k: after.get(k) for k in untouched} == untouched  # backups, the symlink and its target, young logs
    assert not (logs / "week.log").exists() and not (logs / "week.log.gz.tmp").exists()
    assert gzip.decompress((logs / "week.log.gz").read_bytes()) == b"week.log line\n" * 50
    assert os.lstat(logs / "week.log.gz").st_mtime == pytest.approx(week_mtime)  # the age goes on counting
    assert not (logs / "ancient.log").exists() and not (logs / "ancient.log.gz").exists()
    clean = sample_log_rotation(HOST, str(logs), 7, 30)
    assert (clean.uncompressed, clean.expired, clean.expired_archives) == ([], [], [])
    record = audit_lines(tmp_path)[-1]
    assert record["helper"] == "rotate-logs" and "compressed 1 (week.log.gz), deleted 2" in record["outcome"]


def test_rotate_logs_never_replaces_an_existing_archive(tmp_path, log_folder):
    logs, backups, _ = log_folder
    (logs / "week.log.gz").write_bytes(b"someone else's archive")
    ctx, said = context(tmp_path, log_dir=str(logs), backup_dir=str(backups))
    assert maintenance.rotate_logs(ctx, None, apply=True, host=HOST) == 1
    assert (logs / "week.log").exists() and (logs / "week.log.gz").read_bytes() == b"someone else's archive"
    assert "week.log.gz (or its .tmp) already exists; week.log left as is" in said[-2]


def test_gzip_that_does_not_verify_keeps_the_log(tmp_path, monkeypatch):
    log = tmp_path / "a.log"
    log.write_text("data\n")
    monkeypatch.setattr(maintenance, "_gunzip_digest", lambda path: "wrong")
    with pytest.raises(RemediationError, match="did not verify"):
        maintenance.gzip_atomically(log)
    assert log.read_text() == "data\n" and sorted(p.name for p in tmp_path.iterdir()) == ["a.log"]


def test_rotate_logs_refuses_a_log_dir_inside_the_backups(tmp_path):
    ctx, _ = context(tmp_path, log_dir=str(tmp_path / "b" / "logs"), backup_dir=str(tmp_path / "b"))
    with pytest.raises(RemediationError, match="inside backup_dir"):
        maintenance.rotate_logs(ctx, None, apply=True, host=HOST)


# -- docker-cleanup ----------------------------------------------------------------------------------

def summary(name: str, state: str, image: str, size: int = 1000, project: str | None = None,
            labels: dict | None = None, networks: tuple[str, ...] = ()) -> dict:
    return {"Id": f"id-{name}", "Names": [f"/{name}"], "State": state, "ImageID": image, "Image": image,
            "SizeRw": size, "Labels": {**({"com.docker.compose.project": project} if project else {}),
                                       **(labels or {})},
            "NetworkSettings": {"Networks": {n: {"NetworkID": f"net-{n}"} for n in networks}}}


def network(name: str, driver: str = "bridge", project: str | None = None, attached: tuple[str, ...] = ()) -> dict:
    """A network as `docker network inspect` shows it: `Containers` holds the running containers attached."""
    return {"Name": name, "Id": f"net-{name}", "Driver": driver, "Scope": "local",
            "Labels": {"com.docker.compose.project": project} if project else {},
            "Containers": {f"id-{c}": {"Name": c} for c in attached}}


OLD_JOB_LABELS = {"com.docker.compose.service": "nightly", "com.docker.compose.project": "batch",
                  "com.example.team": "risk-data", "org.opencontainers.image.authors": "ops@example.com",
                  "version": "7", "wrapper": "tini"}


class FakeDockerAPI:
    """The docker.APIClient calls docker-cleanup makes; any other call (a volume's, a forced removal) fails."""

    def __init__(self):
        self.changes: list[tuple] = []
        self.df_data = {
            "LayersSize": 10_000,
            "Containers": [summary("nautilus-risk-engine", "exited", "sha256:platform",       # inventory's
                                   networks=("nautilus_nautilus-network",)),
                           summary("lab-oneoff", "exited", "sha256:platform", project="nautilus"),  # compose project
                           summary("nautilus-leftover", "exited", "sha256:platform"),       # named like the platform
                           summary("old-job", "exited", "sha256:only-old-job", 5000, labels=OLD_JOB_LABELS,
                                   networks=("batch_default", "nautilus_scratch")),
                           summary("app", "running", "sha256:used-by-app", networks=("nautilus_busy",))],
            "Images": [{"Id": "sha256:platform", "RepoTags": ["nautilus-lab-base:latest"], "Size": 4000,
                        "SharedSize": 0, "Containers": 3},
                       {"Id": "sha256:only-old-job", "RepoTags": ["<none>:<none>"], "Size": 2000, "SharedSize": 0,
                        "Containers": 1},
                       {"Id": "sha256:used-by-app", "RepoTags": None, "Size": 1500, "SharedSize": 0, "Containers": 1},
                       {"Id": "sha256:dangling", "RepoTags": [], "Size": 700, "SharedSize": 0, "Containers": 0,
                        "Labels": {"maintainer": "someone@example.com"}},
                       {"Id": "sha256:tagged-unused", "RepoTags": ["tool:1"], "Size": 900, "SharedSize": 0,
                        "Containers": 0}],
            "BuildCache": [{"Size": 300, "InUse": False, "Shared": False}],
            "Volumes": [{"Name": "nautilus_postgres-data", "UsageData": {"Size": 9000, "RefCount": 0}}]}
        self.network_data = [
            network("bridge"), network("host", "host"), network("none", "null"),  # Docker's own: never
            network("nautilus_nautilus-network", project="nautilus"),  # a stopped platform engine is configured on it
            network("nautilus_busy", attached=("app",)),  # a running container is attached
            network("nautilus_default", project="nautilus"),  # unused: removed
            network("renamed", project="nautilus"),  # the compose project's by its label, unused: removed
            network("nautilus_scratch"),  # only the removed old-job was on it: removed after it
            network("batch_default", project="batch")]  # another project's: never

    def ping(self):
        return True

    def networks(self, **kwargs):  # as `docker network ls`: no containers listed, whatever is attached
        return [{**n, "Containers": {}} for n in json.loads(json.dumps(self.network_data))]

    def inspect_network(self, net_id, **kwargs):
        return next(json.loads(json.dumps(n)) for n in self.network_data if n["Id"] == net_id)

    def remove_network(self, net_id):
        found = next(n for n in self.network_data if n["Id"] == net_id)
        assert found["Name"] not in ("bridge", "host", "none") and not found["Containers"], "in use or Docker's own"
        self.changes.append(("remove_network", found["Name"]))
        self.network_data.remove(found)

    def df(self):
        return json.loads(json.dumps(self.df_data))

    def remove_container(self, container, v=False, force=False, link=False):
        assert (v, force) == (False, False), "never volumes, never a running container"
        self.changes.append(("remove_container", container))
        self.df_data["Containers"] = [c for c in self.df_data["Containers"] if c["Id"] != container]

    def remove_image(self, image, force=False, noprune=False):
        assert force is False
        self.changes.append(("remove_image", image))
        self.df_data["Images"] = [i for i in self.df_data["Images"] if i["Id"] != image]

    def prune_builds(self, **kwargs):
        assert not kwargs.get("all"), "only cache nothing uses"
        self.changes.append(("prune_builds",))
        self.df_data["BuildCache"] = []
        return {"SpaceReclaimed": 300}

    def __getattr__(self, name):  # remove_volume, prune_volumes, prune_containers, ...: a test failure
        raise AssertionError(f"docker-cleanup called {name}")

    def close(self):
        pass


def test_docker_cleanup_dry_run_changes_nothing_and_prints_the_checks_figure(tmp_path):
    api = FakeDockerAPI()
    ctx, said = context(tmp_path)
    ctx.docker_factory = lambda host: api
    assert maintenance.docker_cleanup(ctx, None, apply=False) == 0
    assert api.changes == [] and audit_lines(tmp_path) == []
    text = "\n".join(said)
    # The docker-disk-reclaimable figure: layers 10000 - 7500 in use = 2500 B, 4 stopped layers 8000 B, cache 300 B
    assert "reclaimable as docker-disk-reclaimable counts it: 10.5 KB (images 2.4 KB, stopped containers 7.8 KB" in text
    assert "kept, platform containers though stopped: lab-oneoff, nautilus-leftover, nautilus-risk-engine" in text
    assert "remove stopped container old-job" in text and "remove untagged image sha256:only-old-job" in text
    assert "sha256:dangling" in text and "used-by-app" not in text and "tagged-unused" not in text


def test_docker_cleanup_plan_names_each_object_with_its_owner_labels(tmp_path):
    api = FakeDockerAPI()
    api.df_data["Containers"].append(summary("scratch", "dead", "sha256:used-by-app", 100))
    ctx, said = context(tmp_path)
    ctx.docker_factory = lambda host: api
    assert maintenance.docker_cleanup(ctx, None, apply=False) == 0
    plan = [line for line in said if line[:1].isdigit()]
    assert plan[:4] == [
        "1. remove stopped container old-job (exited, image sha256:only-old-job, 4.9 KB; owner labels: "
        "com.docker.compose.project=batch, com.docker.compose.service=nightly, com.example.team=risk-data, "
        "org.opencontainers.image.authors=ops@example.com) without its volumes (docker rm, never -v, never -f)",
        "2. remove stopped container scratch (dead, image sha256:used-by-app, 100 B; no owner labels) without its "
        "volumes (docker rm, never -v, never -f)",
        "3. remove untagged image sha256:only-old-job (2.0 KB; labels not listed by docker system df), used by no "
        "container (docker image rm, never -f)",
        "4. remove untagged image sha256:dangling (700 B; owner labels: maintainer=someone@example.com), used by no "
        "container (docker image rm, never -f)"]
    assert said[-1] == ("dry run: nothing changed; add --apply to do it (you will be asked to type the Docker host "
                        "name, local; --yes confirms)")
    assert api.changes == []


def test_only_the_platforms_unused_networks_are_selected():
    api = FakeDockerAPI()
    inspected = [api.inspect_network(n["Id"]) for n in api.networks()]
    old_job = [c for c in api.df_data["Containers"] if c["Names"] == ["/old-job"]]
    staying = [c for c in api.df_data["Containers"] if c not in old_job]
    assert [n["Name"] for n in maintenance.unused_networks(inspected, staying, "nautilus")] == [
        "nautilus_default", "nautilus_scratch", "renamed"]
    # With old-job staying, the network it is configured on stays too.
    assert "nautilus_scratch" not in [n["Name"] for n in maintenance.unused_networks(
        inspected, api.df_data["Containers"], "nautilus")]
    # `docker network ls` lists no containers: read alone it would call the busy network unused; the inspect does not.
    assert "nautilus_busy" in [n["Name"] for n in maintenance.unused_networks(api.networks(), [], "nautilus")]
    assert "nautilus_busy" not in [n["Name"] for n in maintenance.unused_networks(inspected, [], "nautilus")]
    assert [n["Name"] for n in maintenance.platform_networks(Docker(api, DockerHost()), "nautilus")] == [
        "nautilus_nautilus-network", "nautilus_busy", "nautilus_default", "renamed", "nautilus_scratch"]
    for own in ("bridge", "host", "none"):
        assert not maintenance.is_platform_network(network(own, project="nautilus"), "nautilus")


def test_docker_cleanup_dry_run_lists_the_unused_networks_and_removes_none(tmp_path):
    api = FakeDockerAPI()
    ctx, said = context(tmp_path)
    ctx.docker_factory = lambda host: api
    assert maintenance.docker_cleanup(ctx, None, apply=False) == 0
    plan = [line for line in said if "network" in line and line[:1].isdigit()]
    assert plan == [
        "4. remove unused network nautilus_default (bridge driver; the platform's by its compose label, no container "
        "attached or configured on it) (docker network rm)",
        "5. remove unused network nautilus_scratch (bridge driver; the platform's by its name, no container attached "
        "or configured on it) (docker network rm)",
        "6. remove unused network renamed (bridge driver; the platform's by its compose label, no container attached "
        "or configured on it) (docker network rm)"]
    assert api.changes == [] and len(api.network_data) == 9


def test_docker_cleanup_keeps_the_network_of_a_container_it_could_not_remove(tmp_path):
    api = FakeDockerAPI()

    def refuse(container, **kwargs):
        raise docker.errors.APIError("conflict", response=None, explanation="container is running")
    api.remove_container = refuse
    ctx, said = context(tmp_path)
    ctx.docker_factory = lambda host: api
    ctx.confirm = lambda word, plan: None
    assert maintenance.docker_cleanup(ctx, None, apply=True) == 1
    assert ("remove_network", "nautilus_default") in api.changes
    assert ("remove_network", "nautilus_scratch") not in api.changes
    assert "nautilus_scratch: a container kept above is configured on it" in "\n".join(said)


def test_owner_labels_are_bounded_and_redacted_through_say(tmp_path):
    many = {f"team.{i}": "x" * 100 for i in range(9)}
    shown = maintenance.owner_labels({"Labels": many})
    assert shown.endswith(", and 3 more") and f"team.0={'x' * 40}," in shown and "team.6" not in shown
    api = FakeDockerAPI()
    ctx, said = context(tmp_path)
    secret = next(iter(ctx.inventory.secrets.values()))
    api.df_data["Containers"][3]["Labels"]["owner"] = f"ops {secret}"
    ctx.docker_factory = lambda host: api
    maintenance.docker_cleanup(ctx, None, apply=False)
    text = "\n".join(said)
    assert ", owner=ops " in text and secret not in text


def test_docker_cleanup_apply_asks_and_never_touches_platform_containers_or_volumes(tmp_path):
    api = FakeDockerAPI()
    ctx, said = context(tmp_path)
    ctx.docker_factory = lambda host: api
    with pytest.raises(RemediationError, match="nobody confirmed it"):  # the Context's default: nobody to ask
        maintenance.docker_cleanup(ctx, None, apply=True)
    assert api.changes == [] and audit_lines(tmp_path) == []
    asked = []
    ctx.confirm = lambda word, plan: asked.append((word, plan))
    assert maintenance.docker_cleanup(ctx, None, apply=True) == 0, said
    [(word, plan)] = asked
    assert word == "local" and plan[0] == ("docker-cleanup will remove from Docker host 'local' what the platform "
                                           "does not own:")
    assert plan[1].startswith("1. remove stopped container old-job (exited, image sha256:only-old-job, 4.9 KB; "
                              "owner labels: com.docker.compose.project=batch")
    assert api.changes == [("remove_container", "id-old-job"), ("remove_image", "sha256:only-old-job"),
                           ("remove_image", "sha256:dangling"), ("remove_network", "nautilus_default"),
                           ("remove_network", "nautilus_scratch"), ("remove_network", "renamed"), ("prune_builds",)]
    assert {c["Names"][0] for c in api.df_data["Containers"]} == {
        "/nautilus-risk-engine", "/lab-oneoff", "/nautilus-leftover", "/app"}
    assert api.df_data["Volumes"][0]["Name"] == "nautilus_postgres-data"
    assert audit_lines(tmp_path)[-1]["helper"] == "docker-cleanup"


# -- vacuum-analyze ----------------------------------------------------------------------------------

def pg_stats(tables: list[dict]) -> PostgresStats:
    return PostgresStats(150000, "15", "nautilus", 1, 100, 3.0, "x", tables=tables)


def table(name: str, live: int, dead: int, writes: int = 0) -> dict:
    return {"name": name, "live": live, "dead": dead, "writes": writes, "vacuum_age_days": 1.0,
            "analyze_age_days": 1.0, "total_bytes": 1}


class FakeConnection:
    def __init__(self):
        self.executed: list = []
        self.closed = False

    def cursor(self):
        conn = self

        class Cursor:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

            def execute(self, statement):
                conn.executed.append(statement)

        return Cursor()

    def close(self):
        self.closed = True


@pytest.fixture
def postgres(monkeypatch):
    conn = FakeConnection()
    samples = [pg_stats([table("public.lab_bloat", 2000, 18000), table("public.small", 5, 50)]),
               pg_stats([table("public.lab_bloat", 2000, 0), table("public.small", 5, 50)])]
    monkeypatch.setattr(maintenance, "postgres_connect", lambda inventory: conn)
    monkeypatch.setattr(maintenance, "postgres_stats", lambda c, slow_ms: samples.pop(0) if len(samples) > 1
                        else samples[0])
    return conn


def test_vacuum_dry_run_executes_nothing(tmp_path, postgres):
    ctx, said = context(tmp_path)
    assert maintenance.vacuum_analyze(ctx, None, apply=False) == 0
    assert postgres.executed == [] and postgres.closed and audit_lines(tmp_path) == []
    assert "2. VACUUM (ANALYZE) public.lab_bloat: 90 % dead (18000 of 20000 rows)" in said
    assert not any("small" in line for line in said)  # too small to judge, as the check says


def test_vacuum_apply_vacuums_the_flagged_table_never_full(tmp_path, postgres):
    ctx, said = context(tmp_path)
    assert maintenance.vacuum_analyze(ctx, None, apply=True) == 0
    assert postgres.executed[:2] == ["SET statement_timeout = '600s'", "SET lock_timeout = '10s'"]
    assert [repr(s) for s in postgres.executed[2:]] == [repr(maintenance.vacuum_statement("public.lab_bloat"))]
    assert "FULL" not in repr(postgres.executed)
    assert "public.lab_bloat: dead rows 18000 -> 0" in said
    assert audit_lines(tmp_path)[-1]["helper"] == "vacuum-analyze"


def test_vacuum_whole_database_when_nothing_is_flagged_and_unknown_table_refused(tmp_path, monkeypatch, postgres):
    monkeypatch.setattr(maintenance, "postgres_stats", lambda c, slow_ms: pg_stats([table("public.t", 5000, 1)]))
    ctx, said = context(tmp_path)
    assert maintenance.vacuum_analyze(ctx, None, apply=True) == 0
    assert [repr(s) for s in postgres.executed[2:]] == [repr(maintenance.vacuum_statement(None))]
    with pytest.raises(RemediationError, match="'nope' is not a table of nautilus; valid: public.t"):
        maintenance.vacuum_analyze(ctx, "nope", apply=True)


# -- redis-rewrite-aof -------------------------------------------------------------------------------

class FakeRedis:
    def __init__(self, aof: int = 1, running: int = 0, status: str = "ok"):
        self.calls: list[str] = []
        self.state = {"aof_enabled": aof, "aof_rewrite_in_progress": running, "aof_rewrite_scheduled": 0,
                      "aof_last_bgrewrite_status": "err", "aof_last_write_status": "ok", "aof_current_size": 2048}
        self.polls, self.final = 0, status

    def info(self, section):
        assert section == "persistence"
        if self.state["aof_rewrite_in_progress"]:
            self.polls += 1
            if self.polls > 2:  # finishes after a few polls
                self.state.update(aof_rewrite_in_progress=0, aof_last_bgrewrite_status=self.final)
        return dict(self.state)

    def bgrewriteaof(self):
        self.calls.append("BGREWRITEAOF")
        self.state["aof_rewrite_in_progress"] = 1
        return "Background append only file rewriting started"

    def close(self):
        pass


@pytest.mark.parametrize("apply", [False, True])
def test_redis_rewrite_aof(tmp_path, monkeypatch, apply):
    client = FakeRedis()
    monkeypatch.setattr(maintenance, "redis_connect", lambda inventory: client)
    ctx, said = context(tmp_path)
    assert maintenance.redis_rewrite_aof(ctx, None, apply=apply) == 0
    assert client.calls == (["BGREWRITEAOF"] if apply else [])
    if apply:
        assert "aof_last_bgrewrite_status ok" in said[-2] and audit_lines(tmp_path)[-1]["helper"] == "redis-rewrite-aof"
    else:
        assert audit_lines(tmp_path) == []


def test_redis_rewrite_already_running_is_waited_for_not_restarted(tmp_path, monkeypatch):
    client = FakeRedis(running=1, status="err")
    monkeypatch.setattr(maintenance, "redis_connect", lambda inventory: client)
    ctx, said = context(tmp_path)
    assert maintenance.redis_rewrite_aof(ctx, None, apply=True) == 1  # it finished, and failed: said
    assert client.calls == [] and any("already running" in line for line in said)
    assert "aof_last_bgrewrite_status err" in said[-2]


def test_redis_without_aof_has_nothing_to_rewrite(tmp_path, monkeypatch):
    client = FakeRedis(aof=0)
    monkeypatch.setattr(maintenance, "redis_connect", lambda inventory: client)
    ctx, said = context(tmp_path)
    assert maintenance.redis_rewrite_aof(ctx, None, apply=True) == 0 and client.calls == []
    assert "AOF is off" in said[0]


def test_maintenance_helpers_take_no_target_and_only_the_unconfined_one_asks(tmp_path, monkeypatch):
    out, err = io.StringIO(), io.StringIO()
    code = main(["rotate-logs", "x"], stdout=out, stderr=err, environ=ENV)
    assert code == 2 and err.getvalue() == "remediation: rotate-logs: takes no target (got 'x')\n"
    from remediation.registry import HELPERS
    here = [h for h in HELPERS if HELPERS[h].function.startswith("remediation.maintenance:")]
    assert {h: HELPERS[h].kind for h in here} == {
        "vacuum-analyze": "safe", "redis-rewrite-aof": "safe", "rotate-logs": "safe", "docker-cleanup": "unconfined"}
    assert [h for h in HELPERS if HELPERS[h].unattended] == ["vacuum-analyze", "redis-rewrite-aof", "rotate-logs"]
    assert [h for h in HELPERS if not HELPERS[h].confined] == ["docker-cleanup"]


# -- docker-cleanup --apply needs a person -----------------------------------------------------------

class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run_cleanup(tmp_path: Path, *flags: str, stdin: io.StringIO | None = None) -> tuple[int, str, str, list]:
    """`nautilus-remediation docker-cleanup --apply FLAGS` on a fake Docker host; also every connection made."""
    api, connections = FakeDockerAPI(), []

    def factory(host):
        connections.append(host.name)
        return api
    out, err = io.StringIO(), io.StringIO()
    code = main(["docker-cleanup", "--apply", *flags], docker_factory=factory, stdin=stdin or io.StringIO(),
                stdout=out, stderr=err, environ={**ENV, "NAUTILUS_AUDIT_LOG": str(tmp_path / "audit.log")})
    return code, out.getvalue(), err.getvalue(), connections + api.changes


def test_docker_cleanup_apply_without_a_terminal_or_yes_refuses_before_any_docker_call(tmp_path):
    code, out, err, calls = run_cleanup(tmp_path)
    assert (code, out, calls, audit_lines(tmp_path)) == (2, "", [], [])
    assert err == ("remediation: refusing to act on what the platform does not own (docker-cleanup) without "
                   "confirmation: stdin is not a terminal; rerun with --yes to confirm\n")


def test_docker_cleanup_apply_with_yes_acts(tmp_path):
    code, out, err, calls = run_cleanup(tmp_path, "--yes")
    assert (code, err) == (0, "")
    assert calls == ["local", ("remove_container", "id-old-job"), ("remove_image", "sha256:only-old-job"),
                     ("remove_image", "sha256:dangling"), ("remove_network", "nautilus_default"),
                     ("remove_network", "nautilus_scratch"), ("remove_network", "renamed"), ("prune_builds",)]
    assert audit_lines(tmp_path)[-1]["helper"] == "docker-cleanup"


def test_docker_cleanup_at_a_terminal_changes_nothing_on_a_wrong_answer_and_acts_on_the_host_name(tmp_path):
    code, out, err, calls = run_cleanup(tmp_path, stdin=Terminal("cleanup\n"))
    assert code == 2 and calls == ["local"] and audit_lines(tmp_path) == []  # it looked (df), removed nothing
    assert "docker-cleanup will remove from Docker host 'local' what the platform does not own:\n" in err
    assert err.endswith(f"{PROMPT.format('local')}remediation: the answer did not match local; nothing changed\n")
    assert PROMPT.format("local") == "Type local to confirm: "

    code, out, err, calls = run_cleanup(tmp_path, stdin=Terminal("local\n"))
    assert code == 0 and ("remove_container", "id-old-job") in calls


# -- --remediate ---------------------------------------------------------------------------------------

LAB = {"inventory": "lab/inventory.yaml"}


def failed(nodeid: str, check_id: str, helper: str, argument: str | None = None, paths=None) -> Failed:
    """A failed check as --remediate sees it: the helper fix its record carries (printed text and argv)."""
    fix = helper_fix(helper, argument, paths or {})
    return Failed(nodeid, check_id, fix.text, argv=fix.argv)


def test_remediate_runs_only_maintenance_helpers_once_per_command():
    rotate, vacuum = failed("n1", "logs-rotated", "rotate-logs", paths=LAB), failed("n2", "postgres-dead-tuples",
                                                                                    "vacuum-analyze")
    failures = [rotate, vacuum, failed("n3", "postgres-vacuum-recent", "vacuum-analyze")]
    result = plan(failures)
    assert list(result.run) == [rotate.command, vacuum.command] and len(result.run[vacuum.command]) == 2
    assert result.fixes_everything
    assert rotate.argv == ("rotate-logs", f"--inventory={os.path.abspath('lab/inventory.yaml')}")
    assert exit_status(result, 1, 0) == 0 and exit_status(result, 1, 1) == 1

    more = plan(failures + [failed("n4", "container-running", "start-container", "x"),
                            failed("n5", "engine-health", "restart-engine", "risk"),
                            Failed("n6", "redis-ping", None),  # advice (start the Docker daemon), no helper
                            Failed("n7", "port-open", None, blocked_by="container-running[x]")])
    assert [why for _, why in more.skipped] == [
        "start-container is not a maintenance helper: run it yourself",
        "restart-engine is disruptive: run it yourself (it asks to confirm)",
        "no remediation helper: see its message", "blocked by container-running[x]: fix that first"]
    assert exit_status(more, 1, 0) == 1


def test_remediate_never_runs_docker_cleanup_and_says_the_command_a_person_runs():
    cleanup = failed("n1", "docker-disk-reclaimable", "docker-cleanup", paths=LAB)
    rotate = failed("n2", "logs-rotated", "rotate-logs", paths=LAB)
    result = plan([cleanup, rotate])
    assert list(result.run) == [rotate.command] and not result.fixes_everything
    assert exit_status(result, 1, 0) == 1  # the cleanup is still a person's to do
    assert cleanup.command.endswith(f"bin/nautilus-remediation docker-cleanup "
                                    f"--inventory={os.path.abspath('lab/inventory.yaml')}")
    assert [(f.check_id, why) for f, why in result.skipped] == [(
        "docker-disk-reclaimable",
        f"docker-cleanup acts on what the platform does not own: a person reads the dry run `{cleanup.command}`, "
        "then runs it with --apply (it asks to confirm)")]
