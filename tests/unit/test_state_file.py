"""The state files one run keeps for the next (observation/state_file.py): read tolerantly, merged, replaced whole."""
from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from observation import state_file
from observation.errors import Unobserved
from observation.memory_history import MemoryHistory, Remembered
from observation.restart_history import RestartHistory, Seen
from observation.state_file import RunHistory, merge_entries, read_entries


@dataclass(frozen=True)
class Point:
    x: int
    label: str = ""


class Points(RunHistory[Point]):
    FILE_NAME = "points.json"
    ENTRY = Point


def test_no_file_yet_is_an_empty_history(tmp_path):
    assert read_entries(tmp_path / "points.json", Point) == {}
    assert Points(tmp_path).before("local", "a") is None


@pytest.mark.parametrize("text, reason", [
    ("", "JSONDecodeError"),  # empty
    ("{broken", "JSONDecodeError"),  # corrupt
    ("[1, 2]", "a JSON object of entries is expected, not list"),  # another shape at the top
    ('"x"', "a JSON object of entries is expected, not str"),
    ('{"local/a": 3}', "TypeError"),  # an entry that is no object of fields
    ('{"local/a": {"y": 1}}', "unexpected keyword argument 'y'"),  # an entry of other fields
    (b"\xff\xfe", "UnicodeDecodeError"),  # not text at all
])
def test_an_unreadable_file_is_one_line_never_a_traceback(tmp_path, text, reason):
    path = tmp_path / "points.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    seen = Points(tmp_path).before("local", "a")
    assert isinstance(seen, Unobserved)
    assert reason in seen.reason and "\n" not in seen.reason
    assert seen.reason.startswith(f"the state file {path} is unreadable (")
    assert seen.reason.endswith("this run rewrites it, so the next one compares again")


def test_an_unreadable_file_is_rewritten_by_the_next_save(tmp_path):
    (tmp_path / "points.json").write_text("[1, 2]")
    history = Points(tmp_path)
    history.record("local", "a", Point(1))
    history.save()
    assert Points(tmp_path).previous == {"local/a": Point(1)}


def test_save_merges_with_what_is_there_now_and_this_run_wins(tmp_path):
    path = tmp_path / "points.json"
    path.write_text(json.dumps({"local/a": {"x": 1, "label": "old"}, "local/b": {"x": 2, "label": ""}}))
    mine, theirs = Points(tmp_path), Points(tmp_path)
    theirs.record("local", "c", Point(3))
    mine.record("local", "a", Point(10, "new"))
    theirs.save()
    mine.save()  # saved after theirs: keeps c, which it never read
    assert json.loads(path.read_text()) == {"local/a": {"x": 10, "label": "new"}, "local/b": {"x": 2, "label": ""},
                                            "local/c": {"x": 3, "label": ""}}


def test_nothing_recorded_writes_nothing(tmp_path):
    Points(tmp_path).save()
    assert list(tmp_path.iterdir()) == []


def test_save_is_atomic_a_failed_write_leaves_the_old_file_whole_and_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "points.json"
    merge_entries(path, Point, {"local/a": Point(1)})
    before = path.read_text()

    def half_written(data, out, **kwargs):
        out.write('{"local/a": {"x"')  # the first bytes reach the temp file, then the write fails
        raise OSError("No space left on device")
    monkeypatch.setattr(state_file.json, "dump", half_written)
    with pytest.raises(OSError, match="No space left"):
        merge_entries(path, Point, {"local/b": Point(2)})
    assert path.read_text() == before  # the file never held the half-written text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["points.json", "points.lock"]


def test_save_replaces_the_file_by_rename(tmp_path, monkeypatch):
    path = tmp_path / "points.json"
    replaced = []
    real_replace = state_file.os.replace
    monkeypatch.setattr(state_file.os, "replace", lambda src, dst: (replaced.append((src, dst)), real_replace(src, dst)))
    merge_entries(path, Point, {"local/a": Point(1)})
    (temp, target), = replaced
    assert target == path and temp != str(path) and str(temp).startswith(str(tmp_path / ".points-"))
    assert read_entries(path, Point) == {"local/a": Point(1)}


def test_the_two_histories_keep_their_file_names_and_shape(tmp_path):
    """Files written before the shared code read the same: memory.json and containers.json, host/name keys."""
    (tmp_path / "memory.json").write_text(json.dumps({"local/e": {"id": "c1", "started_at": "t", "used_bytes": 5,
                                                                  "at": 1.0}}))
    (tmp_path / "containers.json").write_text(json.dumps({"local/e": {"id": "c1", "restart_count": 0,
                                                                      "started_at": "t", "checked_at": "x"}}))
    assert MemoryHistory(tmp_path).before("local", "e") == Remembered("c1", "t", 5, 1.0)
    assert RestartHistory(tmp_path).before("local", "e") == Seen("c1", 0, "t", "x")  # no image: an older file


def test_a_memory_file_of_another_shape_is_unreadable_then_rewritten(tmp_path):
    (tmp_path / "memory.json").write_text("[]")  # was an AttributeError traceback at read and at save
    history = MemoryHistory(tmp_path)
    assert isinstance(history.before("local", "e"), Unobserved)
    history.record("local", "e", Remembered("c1", "t", 5, 1.0))
    history.save()
    assert MemoryHistory(tmp_path).before("local", "e") == Remembered("c1", "t", 5, 1.0)
