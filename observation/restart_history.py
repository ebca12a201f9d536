"""What one run remembers of each container for the next: its id, image, RestartCount and StartedAt.

A restart between two runs is invisible in one `docker inspect` once the
container is back up; comparing with the previous run shows it. A container
recreated since (a new id for the same name: `compose up` of a new image, a
redeploy) is a deploy, which is information, not a failure; Docker's own
restarts of the new container still count against it. The state is
a small JSON file, merged and replaced atomically (temp file + rename, under
a lock) at the end of a run, so parallel workers and concurrent runs never
leave it half written or drop each other's entries.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from .errors import Unobservable, Unobserved
from .state_file import RunHistory

STATE_FILE = "containers.json"


@dataclass(frozen=True)
class Seen:
    """A container as one run saw it."""

    id: str
    restart_count: int
    started_at: str
    checked_at: str  # when the run looked (UTC, ISO 8601)
    image: str = ""  # the image id; absent from files written before deploys were told apart

    @classmethod
    def of(cls, attrs: dict, now: datetime | None = None) -> Seen:
        return cls(id=attrs.get("Id", ""), restart_count=attrs.get("RestartCount") or 0,
                   started_at=(attrs.get("State") or {}).get("StartedAt", ""),
                   checked_at=(now or datetime.now(timezone.utc)).isoformat(timespec="seconds"),
                   image=attrs.get("Image", ""))


def short_id(image: str) -> str:
    """
    >>> short_id("sha256:15b2fed636d7e2465d278c7d75d9"), short_id("")
    ('15b2fed636d7', '?')
    """
    return image.removeprefix("sha256:")[:12] or "?"


@dataclass(frozen=True)
class Deploy:
    """A container recreated since the previous run."""

    container: str
    image_before: str
    image_now: str
    started_at: str

    @classmethod
    def between(cls, name: str, before: Seen | None, now: Seen) -> "Deploy | None":
        """The deploy of `name` between two runs, or None when the container is the same one.

        >>> a = Seen("c1", 0, "2025-08-01T10:00:00Z", "x", "sha256:aaa")
        >>> Deploy.between("n", a, Seen("c1", 3, "2025-08-01T12:00:00Z", "x", "sha256:aaa")) is None
        True
        >>> Deploy.between("n", a, Seen("c2", 0, "2025-08-01T12:00:00.123456789Z", "x", "sha256:bbb")).line()
        'n (image aaa -> bbb, started 2025-08-01 12:00:00)'
        """
        if before is None or not before.id or not now.id or before.id == now.id:
            return None
        return cls(name, before.image, now.image, now.started_at)

    @property
    def image(self) -> str:
        """The image, or the change of image, in short ids."""
        return (f"image {short_id(self.image_now)}" if self.image_before in ("", self.image_now)
                else f"image {short_id(self.image_before)} -> {short_id(self.image_now)}")

    @property
    def started(self) -> str:
        """When the new container started, to the second (Docker gives nanoseconds)."""
        return self.started_at[:19].replace("T", " ")

    def line(self) -> str:
        return f"{self.container} ({self.image}, started {self.started})"


def changes(before: Seen, now: Seen) -> list[str]:
    """What happened to the container between two runs, in words; empty when nothing did.

    A recreated container is a deploy (see Deploy), not a change of its own; only Docker's restarts of the
    new container are.

    >>> a = Seen("c1", 2, "2025-08-01T10:00:00Z", "2025-08-01T11:00:00+00:00")
    >>> changes(a, Seen("c1", 2, "2025-08-01T10:00:00Z", "x"))
    []
    >>> changes(a, Seen("c1", 4, "2025-08-01T12:00:00Z", "x"))
    ['Docker restarted it 2 times (RestartCount 2 -> 4)', 'started again at 2025-08-01T12:00:00Z (was 2025-08-01T10:00:00Z)']
    >>> changes(a, Seen("c2", 0, "2025-08-01T12:00:00Z", "x")), changes(a, Seen("c2", 3, "2025-08-01T12:00:00Z", "x"))
    ([], ['recreated, then Docker restarted the new container 3 times (RestartCount 3)'])
    """
    if before.id and now.id and before.id != now.id:
        return ([f"recreated, then Docker restarted the new container {now.restart_count} times "
                 f"(RestartCount {now.restart_count})"] if now.restart_count else [])
    found = []
    if now.restart_count > before.restart_count:
        found.append(f"Docker restarted it {now.restart_count - before.restart_count} times "
                     f"(RestartCount {before.restart_count} -> {now.restart_count})")
    if now.started_at != before.started_at:
        found.append(f"started again at {now.started_at} (was {before.started_at})")
    return found


class RestartHistory(RunHistory[Seen]):
    """The previous run's record (read once), and what this run saw (written by `save`)."""

    FILE_NAME = STATE_FILE
    ENTRY = Seen


def deploys_since(history: RestartHistory, snapshot, targets) -> dict[tuple[str, str], Deploy]:
    """The targets' containers recreated since the previous run, by (host, name); `snapshot` answers
    `get(name, host)` with the container's inspect data (a ContainerSnapshot). What cannot be looked at, or was
    not recorded before, is no deploy."""
    found = {}
    for target in targets:
        before = history.before(target.host, target.name)
        try:
            attrs = snapshot.get(target.name, target.host)
        except Unobservable:
            continue
        if attrs and not isinstance(before, Unobserved):
            deploy = Deploy.between(target.name, before, Seen.of(attrs))
            if deploy:
                found[(target.host, target.name)] = deploy
    return found
