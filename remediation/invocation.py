"""The one place a helper's command line is written: what a failed check, a helper's advice and the CLI print.

A printed command has to run as printed, pasted into any shell: from any
directory, with no virtualenv active and only /usr/bin:/bin on PATH (stock
Debian has no `python`). So it names the checkout's own entry point by its
absolute path, the inventory by its absolute path, and, when the suite runs
under another interpreter than the checkout's .venv, that interpreter too.

>>> argv = helper_argv("free-port", "8200", inventory="/srv/inv.yaml")
>>> argv
['free-port', '8200', '--inventory=/srv/inv.yaml']
>>> render(argv, python=str(VENV_PYTHON)) == f"{ENTRY} free-port 8200 --inventory=/srv/inv.yaml"
True
>>> render(["maintenance", "risk", "--reason=index rebuild"], python="/opt/py 3/python").replace(str(ENTRY), "E")
"NAUTILUS_PYTHON='/opt/py 3/python' E maintenance risk '--reason=index rebuild'"
"""
from __future__ import annotations

import os
import re
import shlex
import sys
from pathlib import Path
from typing import Callable, Sequence

CHECKOUT = Path(__file__).resolve().parent.parent
ENTRY = CHECKOUT / "bin" / "nautilus-remediation"
VENV_PYTHON = CHECKOUT / ".venv" / "bin" / "python"
PYTHON_VARIABLE = "NAUTILUS_PYTHON"  # read by bin/nautilus-remediation


def absolute(path: str | os.PathLike | None) -> str | None:
    """A path as the command carries it: absolute (relative to where the run started), not resolved, so a
    symlinked inventory keeps its name.

    >>> absolute("/a/../b.yaml"), absolute(None)
    ('/b.yaml', None)
    """
    return os.path.abspath(os.fspath(path)) if path else None


def helper_argv(helper: str, argument: str | int | None = None, *, inventory: str | os.PathLike | None = None,
                state_dir: str | os.PathLike | None = None, extra: Sequence[str] = ()) -> list[str]:
    """The arguments after the entry point: what `remediation.cli.main` takes, and what `--remediate` runs.

    >>> helper_argv("restart-redis", inventory="lab/inv.yaml", state_dir="/s")[1:] == [
    ...     f"--inventory={absolute('lab/inv.yaml')}", "--state-dir=/s"]
    True
    """
    argv = [helper] + ([str(argument)] if argument not in (None, "") else []) + list(extra)
    if inventory:
        argv.append(f"--inventory={absolute(inventory)}")
    if state_dir:
        argv.append(f"--state-dir={absolute(state_dir)}")
    return argv


def interpreter_prefix(python: str | None = None) -> str:
    """`NAUTILUS_PYTHON=... ` when the interpreter running now is not the one the entry point would pick.

    Compared as paths, not resolved: the venv's python is a symlink to the system's, and only the venv's
    has the suite's packages.

    >>> interpreter_prefix(str(VENV_PYTHON)), interpreter_prefix("/usr/bin/python3")
    ('', 'NAUTILUS_PYTHON=/usr/bin/python3 ')
    """
    python = python or sys.executable
    if os.path.abspath(python) == str(VENV_PYTHON):
        return ""
    return f"{PYTHON_VARIABLE}={shlex.quote(python)} "


def render(argv: Sequence[str], python: str | None = None) -> str:
    """The command line a person pastes: the entry point's absolute path and the arguments, shell-quoted."""
    return interpreter_prefix(python) + shlex.join([str(ENTRY), *argv])


def documented(argv: Sequence[str]) -> str:
    """The command as a document in the checkout writes it: the entry point relative to the checkout, so the
    document reads the same in every checkout (a printed command is absolute instead).

    >>> documented(["restart-engine", "risk"])
    'bin/nautilus-remediation restart-engine risk'
    """
    return shlex.join([str(ENTRY.relative_to(CHECKOUT)), *argv])


# A helper named inside advice written where the run's inventory is not known (a check given only the
# Inventory object). The report hook, which knows the run's paths, fills it in with `fill`.
_MENTION = re.compile(r"\{\{helper ([^{}]+)\}\}")


def mention(helper: str, argument: str | int | None = None) -> str:
    """A placeholder for a helper's command inside advice text; `fill` turns it into the command.

    >>> mention("diagnose-engine", "risk")
    '{{helper diagnose-engine risk}}'
    """
    return "{{helper " + shlex.join(helper_argv(helper, argument)) + "}}"


def fill(text: str, *, inventory: str | os.PathLike | None = None, state_dir: str | os.PathLike | None = None,
         python: str | None = None, argv_for: Callable[..., list[str]] = helper_argv) -> str:
    """Every `mention` in `text` replaced by the full command for this run; `argv_for` is the helper table's
    rule when the caller has it (remediation.registry.argv_for: which helper takes what).

    >>> fill("see {{helper diagnose-engine risk}} first", python=str(VENV_PYTHON)) == f"see {ENTRY} diagnose-engine risk first"
    True
    """
    def one(match: re.Match) -> str:
        helper, *rest = shlex.split(match.group(1))
        return render(argv_for(helper, rest[0] if rest else None, inventory=inventory, state_dir=state_dir), python)
    return _MENTION.sub(one, text)
