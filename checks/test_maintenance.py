"""Maintenance: today's backup, rotated logs, container log sizes, image age, Prometheus scraping every target.

Files are read through testinfra's `host` (the inventory's first host), once
per run; Docker's figures come from the run's `docker inspect` and
`docker system df` samples.
"""
from __future__ import annotations

import posixpath
import time
from dataclasses import replace
from datetime import date

import pytest

from fixtures.spec import DAILY, WEEKLY, check
from observation.errors import Unobservable
from observation.inventory import Inventory
from observation.maintenance import sample_backups
from observation.prometheus import FORMAT_MISMATCH_FIX, down_targets, instance_port
from observation.targets import in_containers

from .guide import BEST_PRACTICES, DAILY_MAINTENANCE, LOG_MANAGEMENT

MB = 1024 * 1024


# The platform's own backup script writes database/nautilus_full_YYYYmmdd_HHMMSS.sql.gz under the backup directory,
# where the default pattern is the guide's name: with the default, either is today's backup.
PLATFORM_BACKUPS = ("database", "nautilus_full_{date}_*.sql.gz")


@check("backup-today", "A non-empty database backup dated today exists", tiers=DAILY, severity="critical",
       guide=DAILY_MAINTENANCE)
def test_backup_today(backup_sample, host, inventory, verdict):
    sample = verdict.observed(backup_sample)
    wanted = f"{sample.directory}/{sample.glob}"
    if not sample.matches and sample.exists and \
            inventory.backup_pattern == Inventory.model_fields["backup_pattern"].default:
        folder, pattern = PLATFORM_BACKUPS
        platform = verdict.observed(sample_backups(host, posixpath.join(sample.directory, folder), pattern,
                                                   date.today()))
        wanted += f" or {platform.directory}/{platform.glob}"
        sample = platform if platform.matches else \
            replace(sample, others=sample.others + [f"{folder}/{name}" for name in platform.others])
    if not sample.exists:
        verdict.advise("check backup_dir in the inventory, and that the backup job is installed")
    verdict.expect(sample.exists, expected=f"a backup {wanted}", seen=f"no directory {sample.directory}")
    verdict.evidence("backups", {"matching": [b.line() for b in sample.matches], "other_newest": sample.others})
    if not sample.matches:
        verdict.advise("run the backup (pg_dump | gzip) and check why today's did not run")
    verdict.expect(bool(sample.matches), expected=f"a backup {wanted}",
                   seen="none dated today" + (f"; newest files: {', '.join(sample.others)}" if sample.others else
                                              "; the directory is empty"))
    usable = [b for b in sample.matches if b.usable]
    verdict.measured("backup_bytes", max(b.size for b in sample.matches))
    if not usable:
        verdict.advise("rerun the backup and read its log: an empty dump means pg_dump failed")
    verdict.expect(bool(usable), expected=f"a backup {wanted} with data (non-empty, gzip that decompresses)",
                   seen="; ".join(b.line() for b in sample.matches))


@check("logs-rotated", "The log directory holds no old uncompressed or expired *.log files", tiers=DAILY,
       severity="normal", guide=LOG_MANAGEMENT, remedy="rotate-logs")
def test_logs_rotated(log_rotation, inventory, verdict):
    found = verdict.observed(log_rotation)
    t = inventory.thresholds
    if not found.exists:
        verdict.advise("set log_dir in the inventory to where the platform writes its logs")
    verdict.expect(found.exists, expected=f"the log directory {found.directory}", seen="no such directory")
    now = time.time()
    listed = lambda files: [f"{f.path} ({f.age_days(now):g} days, {f.size / MB:.1f} MB)" for f in files[:20]] + (  # noqa: E731
        [f"... and {len(files) - 20} more"] if len(files) > 20 else [])
    verdict.evidence("rotation", {"files": found.total_files, "uncompressed": listed(found.uncompressed),
                                  "expired": listed(found.expired)})
    verdict.measured("stale_logs", len(found.uncompressed) + len(found.expired))
    problems = []
    if found.uncompressed:
        problems.append(f"{len(found.uncompressed)} *.log older than {t.log_compress_after_days:g} days not "
                        f"compressed: {', '.join(listed(found.uncompressed))}")
    if found.expired:
        problems.append(f"{len(found.expired)} *.log older than {t.log_delete_after_days:g} days not deleted: "
                        f"{', '.join(listed(found.expired))}")
    verdict.expect(not problems, expected=f"*.log compressed after {t.log_compress_after_days:g} days and deleted "
                                          f"after {t.log_delete_after_days:g} days in {found.directory}",
                   seen="; ".join(problems))


@check("container-log-size", "A platform container's json log file is below the size limit", tiers=DAILY,
       severity="normal", guide=LOG_MANAGEMENT,
       needs=("container-exists",))
def test_container_log_size(container, container_log_sizes, container_states, inventory, verdict):
    size = container_log_sizes[(container.host, container.name)]
    if size is None:
        attrs = container_states.get(container.name, container.host)
        if attrs is None:
            raise Unobservable(f"container {container.name} does not exist (see container-exists)")
        driver = ((attrs.get("HostConfig") or {}).get("LogConfig") or {}).get("Type")
        pytest.skip(f"log driver {driver!r} keeps no log file Docker can name; nothing to measure")
    size = verdict.observed(size)
    limit = inventory.thresholds.container_log_max_mb
    verdict.measured("log_mb", round(size / MB, 1))
    if size > limit * MB:
        verdict.advise("set log rotation for the container (log-opts max-size=100m, max-file=3 in daemon.json or the "
                       "compose file; see container-log-rotation) and recreate it")
    verdict.expect(size <= limit * MB, expected=f"a log file of at most {limit:g} MB", seen=f"{size / MB:.1f} MB")


@check("image-age", "The image a platform container runs was built within the age limit", tiers=WEEKLY,
       severity="minor", guide=BEST_PRACTICES,
       needs=("container-exists",))
def test_image_age(container, container_states, docker_df, inventory, verdict):
    attrs = container_states.get(container.name, container.host)
    if attrs is None:
        raise Unobservable(f"container {container.name} does not exist (see container-exists)")
    if container.host != inventory.hosts[0].name:
        raise Unobservable(f"images are listed on host {inventory.hosts[0].name!r} only")
    image_id = attrs.get("Image")
    images = {i.get("Id"): i for i in verdict.observed(docker_df).get("Images") or []}
    image = images.get(image_id)
    if image is None:
        raise Unobservable(f"image {image_id} of {container.name} is not in docker system df")
    age_days = (time.time() - image["Created"]) / 86400
    limit = inventory.thresholds.image_max_age_days
    tags = image.get("RepoTags") or [(attrs.get("Config") or {}).get("Image") or image_id]
    verdict.evidence("image", {"id": image_id, "tags": tags, "created": time.strftime(
        "%Y-%m-%d %H:%M UTC", time.gmtime(image["Created"])), "age_days": round(age_days, 2)})
    verdict.measured("image_age_days", round(age_days, 2))
    if age_days > limit:
        verdict.advise("rebuild or pull the image for security updates and recreate the container")
    verdict.expect(age_days <= limit, expected=f"an image built within {limit:g} days",
                   seen=f"{', '.join(tags)} built {age_days:.3g} days ago")


def explained_ports(inventory, maintenance_windows, container_states) -> dict[int, str]:
    """Ports whose target is down for a reason another check or a window already tells: its engine or service is
    under planned work, or its container is not running (container-running is that cause, with its own fix)."""
    found = {}
    for kind, items in (("engine", inventory.engines.values()), ("service", inventory.services.values())):
        for item in items:
            if f"{kind}:{item.name}" in maintenance_windows:
                found[item.port] = f"{item.name} is in maintenance"
                continue
            if not in_containers(inventory, item):
                continue
            try:
                attrs = container_states.get(item.container, item.host)
            except Unobservable:
                continue  # Docker cannot say: the target's own state is the only evidence
            status = ((attrs or {}).get("State") or {}).get("Status", "missing") if attrs else "missing"
            if status != "running":
                found[item.port] = f"container {item.container} is {status}"
    return found


@check("prometheus-targets-up", "Prometheus scrapes every target it is configured for", tiers=DAILY,
       severity="normal", guide=BEST_PRACTICES,
       needs=("service-health-answers@prometheus",))
def test_prometheus_targets_up(prometheus, prometheus_targets, inventory, maintenance_windows, container_states,
                               verdict):
    if prometheus is None:
        pytest.skip("the inventory names no Prometheus (inventory prometheus.url)")
    active = verdict.observed(prometheus_targets)
    explained = explained_ports(inventory, maintenance_windows, container_states)
    # "unknown" is a target Prometheus has not scraped yet (it just appeared, or Prometheus just started): no verdict.
    down = [d for d in down_targets(active) if d.health != "unknown" and instance_port(d.instance) not in explained]
    verdict.evidence("not_scraped_yet", [d.line() for d in down_targets(active) if d.health == "unknown"])
    verdict.evidence("down_and_explained_elsewhere", {str(port): why for port, why in explained.items()})
    verdict.evidence("targets", [{"job": (t.get("labels") or {}).get("job"),
                                  "instance": (t.get("labels") or {}).get("instance"), "health": t.get("health"),
                                  "last_error": t.get("lastError"), "last_scrape": t.get("lastScrape")} for t in active])
    verdict.measured("targets_down", len(down))
    if not active:
        verdict.advise("check Prometheus's scrape_configs")
    verdict.expect(bool(active), expected=f"active scrape targets in {prometheus.url}/api/v1/targets",
                   seen="none: Prometheus scrapes nothing")
    # A target that answers in JSON is running: starting it would change nothing, the format is the fix.
    mismatched = [d for d in down if d.format_mismatch]
    if mismatched:
        others = len(down) - len(mismatched)
        verdict.advise(f"{FORMAT_MISMATCH_FIX} ({', '.join(d.instance for d in mismatched)})"
                       + (f"; for the other {others}: start the engine behind each target, or correct the scrape "
                          "config" if others else ""))
    elif down:
        verdict.advise("start the engine behind each target, or correct the scrape config")
    verdict.expect(not down, expected=f"all {len(active)} active targets up",
                   seen=f"{len(down)} not up: " + "; ".join(d.line() for d in down))
