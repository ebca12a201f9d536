"""The helper commands the suite prints run as printed: from any directory, with no virtualenv and a bare PATH.

Also the helper CLI a person reaches for during an incident: `list` grouped, `HELPER --help`, a mistyped name.
"""
from __future__ import annotations

import io
import os
import shutil
import stat
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.judgement import fix_for, helper_fix
from fixtures.spec import CheckSpec
from remediation.cli import main
from remediation.invocation import CHECKOUT, ENTRY, VENV_PYTHON, documented, fill, helper_argv, mention, render
from remediation.registry import HELPERS, argv_for, command_for

BARE = {"PATH": "/usr/bin:/bin"}  # stock Debian: no `python`, no virtualenv


def shell(line: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run a printed command as a person pasting it would: through sh, from /tmp, with a bare environment."""
    return subprocess.run(["/bin/sh", "-c", line], cwd="/tmp", env=env or BARE, capture_output=True, text=True,
                          timeout=60)


# -- rendering -----------------------------------------------------------------------------------

def test_the_command_names_the_entry_point_and_the_inventory_by_absolute_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = render(helper_argv("free-port", "8200", inventory="inv/lab.yaml"), python=str(VENV_PYTHON))
    assert line == f"{CHECKOUT}/bin/nautilus-remediation free-port 8200 --inventory={tmp_path}/inv/lab.yaml"
    assert ENTRY.is_absolute() and ENTRY == CHECKOUT / "bin" / "nautilus-remediation"


def test_arguments_are_shell_quoted():
    line = render(helper_argv("maintenance", "risk", inventory="/srv/my inventory.yaml",
                              extra=["--reason=index; rm -rf /"]), python=str(VENV_PYTHON))
    assert line.endswith("maintenance risk '--reason=index; rm -rf /' '--inventory=/srv/my inventory.yaml'")


def test_another_interpreter_is_named_in_front_and_the_venv_one_is_not():
    assert render(["list"], python=str(VENV_PYTHON)) == f"{ENTRY} list"
    assert render(["list"], python="/opt/python 3.12/bin/python") == \
        f"NAUTILUS_PYTHON='/opt/python 3.12/bin/python' {ENTRY} list"
    # the suite's own interpreter decides when none is given
    assert render(["list"]).startswith("" if os.path.abspath(sys.executable) == str(VENV_PYTHON)
                                       else f"NAUTILUS_PYTHON={sys.executable} ")


def test_the_helper_table_decides_argument_and_state_dir():
    assert argv_for("restart-redis", "nautilus-redis", inventory="/i.yaml") == ["restart-redis", "--inventory=/i.yaml"]
    assert argv_for("restart-engine", "risk", state_dir="/s") == ["restart-engine", "risk"]
    assert argv_for("restore-engine", "risk", state_dir="/s") == ["restore-engine", "risk", "--state-dir=/s"]
    assert command_for("free-port", 8200, inventory="/i.yaml") == render(["free-port", "8200", "--inventory=/i.yaml"])


def test_a_document_names_the_entry_point_inside_the_checkout():
    assert documented(["diagnose-engine"]) == "bin/nautilus-remediation diagnose-engine"


# -- what a failed check carries -----------------------------------------------------------------

SPEC = CheckSpec("engine-health", "t", ("daily",), "critical", "g", "restart-engine", None, "m", "f")
RISK = type("Target", (), {"remediation_arg": "risk"})()


def test_a_checks_fix_carries_its_argv_and_prints_the_same_command():
    fix = fix_for(SPEC, {}, RISK, {"inventory": "lab/inventory.yaml", "state_dir": None})
    inventory = os.path.abspath("lab/inventory.yaml")
    assert fix.argv == ("restart-engine", "risk", f"--inventory={inventory}") and fix.dry_run
    assert fix.text == render(list(fix.argv))
    assert fix.line().endswith(f"restart-engine risk --inventory={inventory}   (dry run; add --apply to act)")


def test_the_helper_a_check_chose_replaces_its_own():
    fix = fix_for(SPEC, {"remedy": "unpause-container nautilus-risk-engine"}, RISK, {"inventory": "/i.yaml"})
    assert fix.argv == ("unpause-container", "nautilus-risk-engine", "--inventory=/i.yaml")


def test_a_helper_named_in_advice_gets_the_runs_inventory():
    advice = f"find the leak; {mention('diagnose-engine', 'risk')} shows its stats"
    fix = fix_for(SPEC, {"advice": advice}, RISK, {"inventory": "/srv/inv.yaml", "state_dir": None})
    assert fix.text == f"find the leak; {render(['diagnose-engine', 'risk', '--inventory=/srv/inv.yaml'])} shows its stats"
    assert not fix.dry_run and fix.argv == ()
    assert fill("no helper here") == "no helper here"


# -- the printed command runs as printed -----------------------------------------------------------

def test_printed_list_runs_from_tmp_with_a_bare_path():
    line = render(["list"])
    done = shell(line)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("look first") and "\nact " in done.stdout and done.stderr == ""


def test_a_reader_that_stops_early_gets_no_complaint():
    helper = subprocess.Popen(shlex.split(render(["list"])), cwd="/tmp", env=BARE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    helper.stdout.close()  # as `| head -1` does once it has its line; here before the helper writes anything
    assert (helper.stderr.read(), helper.wait(timeout=30)) == ("", 0)


def test_printed_helper_help_runs_from_tmp_with_a_bare_path(tmp_path):
    inventory = tmp_path / "my inventory.yaml"
    inventory.write_text("{}\n")
    line = helper_fix("free-port", "8300", {"inventory": str(inventory)}).text + " --help"
    done = shell(line)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("free-port: ") and "kind:     read-only" in done.stdout


@pytest.mark.skipif(not Path("/usr/bin/python3").exists(), reason="no system python3 to stand for another interpreter")
def test_printed_command_with_another_interpreter_runs_too():
    # `list` needs only the standard library, so the system's python3 can stand for another interpreter here.
    line = render(["list"], python="/usr/bin/python3")
    assert line.startswith("NAUTILUS_PYTHON=/usr/bin/python3 ")
    done = shell(line)
    assert done.returncode == 0 and done.stdout.startswith("look first"), done.stderr


def test_the_entry_point_is_committed_executable_posix_sh():
    text = ENTRY.read_text()
    assert text.startswith("#!/bin/sh\n") and ENTRY.stat().st_mode & stat.S_IXUSR
    assert "bash" not in text.splitlines()[0]


def test_without_a_venv_the_entry_point_says_make_setup_and_exits_4(tmp_path):
    checkout = tmp_path / "checkout"
    (checkout / "bin").mkdir(parents=True)
    shutil.copy2(ENTRY, checkout / "bin" / "nautilus-remediation")
    link = tmp_path / "elsewhere"  # called through a symlink: the checkout is still found from the real path
    link.symlink_to(checkout / "bin" / "nautilus-remediation")
    done = shell(f"'{link}' list")
    assert done.returncode == 4 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "make setup" in done.stderr and str(checkout) in done.stderr


# -- the CLI during an incident --------------------------------------------------------------------

def run_main(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err, stdin=io.StringIO(), environ={})
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("helper", sorted(HELPERS))
def test_each_helpers_help_says_target_reads_changes_kind_and_an_example(helper):
    code, out, err = run_main(helper, "--help")
    info = HELPERS[helper]
    assert (code, err) == (0, "")
    assert out.startswith(f"{helper}: {info.summary}\n")
    for label in ("target:", "reads:", "changes:", "kind:", "example:"):
        assert f"\n{label}" in out, label
    assert f"kind:     {info.kind}: " in out
    assert f"example:  {render(info.example.split()[:1])}" in out  # runnable as printed


def test_list_is_grouped_look_first_then_act():
    code, out, _ = run_main("list")
    lines = out.splitlines()
    act = next(i for i, line in enumerate(lines) if line.startswith("act"))
    assert code == 0 and lines[0].startswith("look first")
    assert {line.split()[0] for line in lines[1:act]} == {n for n, h in HELPERS.items() if h.read_only}
    assert {line.split()[0] for line in lines[act + 1:]} == {n for n, h in HELPERS.items() if not h.read_only}


@pytest.mark.parametrize("typed, meant", [("restart-engin", "restart-engine"), ("fre-port", "free-port"),
                                          ("lsit", "list"), ("diagnose-memroy", "diagnose-memory")])
def test_a_mistyped_helper_gets_did_you_mean_in_one_line(typed, meant):
    code, out, err = run_main(typed, "risk")
    assert (code, out) == (2, "") and err.count("\n") == 1
    assert f"unknown helper {typed!r}; did you mean {meant}? (every helper: " in err
