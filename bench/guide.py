"""The troubleshooting guide's diagnostic scripts, read from the guide at run time, and what they probe.

Nothing of the guide is copied into the project: `extract()` finds a script by
its `#### **Heading**` and returns its first ```bash block as written.

Counting rule (`count_probes`): a probe is one run of a command that asks the
system something: `docker` (any subcommand; `docker exec C psql/redis-cli/ping`
is one probe of C), `docker-compose`, `curl`, `nc`, `ping`, `redis-cli`,
`psql`, `top`, `free`, `df`, `hostname`, `uname`, `lsof`, `ss`, `netstat`.
Text tools that only reshape what a probe printed (`grep`, `jq`, `sed`, `sort`,
`head`, `wc`, `awk`, `echo`), `date`, `sleep`, `kill` and `timeout` (its
command is counted) are not probes. Every simple command is found by splitting
the text at unquoted `|`, `;`, `&`, newlines and at `$(` and `)` (command
substitutions run even inside double quotes), skipping keywords (`if`, `then`,
`!`, ...), variable assignments and `timeout N`. A `for VAR in LIST` loop
multiplies its body by its items: literal words, `$(seq A S B)`, `{A..B..S}`,
and a `$(docker ps ... | grep nautilus)` list taken from the running lab (its
container names containing "nautilus"); the loop-list command itself is one
probe. The body's guard `if docker ps ... | grep -q "$container"` counts once
per item, and so does each probe in either branch of an if (both are written
out for every item; on a healthy lab the success branch is the one that runs).
`invocations` counts them all; `distinct` counts distinct command texts after
the loop variable is substituted (the same `docker ps` asked nine times is one
fact), which is the figure set against the suite's judged check results.
A probe that reads all containers at once (`docker stats --no-stream`,
`docker ps`) counts as one, like any other single invocation.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

SCRIPTS = {"full-health-check": "Full System Health Check",
           "performance-bottlenecks": "Performance Bottleneck Detection"}
PROBES = frozenset({"docker", "docker-compose", "curl", "nc", "ping", "redis-cli", "psql", "top", "free", "df",
                    "hostname", "uname", "lsof", "ss", "netstat"})
KEYWORDS = frozenset({"if", "then", "else", "elif", "fi", "do", "done", "while", "until", "!", "{", "}", "[[", "time"})
TOOLS = {"jq": "jq", "nc": "netcat-openbsd", "lsof": "lsof", "curl": "curl"}


class GuideError(Exception):
    pass


def extract(markdown: str, heading: str) -> str:
    """The first ```bash block after the `#### **heading**` line."""
    match = re.search(r"^#{2,6}\s*\**\s*" + re.escape(heading) + r"\s*\**\s*$", markdown, re.M)
    if not match:
        raise GuideError(f"no heading {heading!r} in the guide")
    block = re.compile(r"^```bash[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S).search(markdown, match.end())
    next_heading = re.compile(r"^#{1,4}\s", re.M).search(markdown, match.end())
    if not block or (next_heading and next_heading.start() < block.start()
                     and not markdown[match.end():block.start()].strip().startswith("```")):
        raise GuideError(f"no bash block under {heading!r}")
    return block.group(1)


def extract_all(path: Path) -> dict[str, str]:
    """Both scripts, each a bash script as the benchmark runs it; a guide that is missing, lost a heading or
    its block, or holds something else there is refused in one line.

    The headings are checked against checks/guide_sections.txt by a unit test, which never needs the guide."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise GuideError(f"cannot read the guide {path} ({getattr(exc, 'strerror', None) or exc})") from None
    scripts = {key: extract(text, heading) for key, heading in SCRIPTS.items()}
    for key, script in scripts.items():
        if not script.startswith("#!/bin/bash"):
            raise GuideError(f"the block under {SCRIPTS[key]!r} in {path} is no bash script (no #!/bin/bash line)")
    return scripts


# -- counting -----------------------------------------------------------------

def _strip_comments(script: str) -> str:
    """The script without comment lines (the shebang too) and trailing unquoted ` # ...` comments."""
    out = []
    for line in script.splitlines():
        quote = None
        for i, ch in enumerate(line):
            if quote:
                quote = None if ch == quote else quote
            elif ch in "'\"":
                quote = ch
            elif ch == "#" and (i == 0 or line[i - 1] in " \t;"):
                line = line[:i]
                break
        out.append(line)
    return "\n".join(out)


def simple_commands(text: str) -> list[str]:
    """The simple commands of a piece of shell, in order (see the module's counting rule)."""
    commands: list[str] = []
    current: list[str] = []
    quote: str | None = None
    outer: list[str | None] = []  # quote states around the open $( ... )
    i = 0

    def cut() -> None:
        commands.append("".join(current))
        current.clear()

    while i < len(text):
        ch = text[i]
        if quote == "'":
            current.append(ch)
            quote = None if ch == "'" else quote
        elif text.startswith("$(", i) and not text.startswith("$((", i):
            cut()
            outer.append(quote)
            quote = None
            i += 2
            continue
        elif quote == '"':
            if ch == "\\" and i + 1 < len(text):
                current.append(text[i:i + 2])
                i += 2
                continue
            current.append(ch)
            quote = None if ch == '"' else quote
        elif ch in "'\"":
            quote = ch
            current.append(ch)
        elif ch == ")" and outer:
            cut()
            quote = outer.pop()
        elif ch in "|;&\n":
            cut()
        else:
            current.append(ch)
        i += 1
    cut()
    return [c.strip() for c in commands if c.strip()]


def probe_of(command: str) -> str | None:
    """The command's text from its probe word on, or None when it is no probe."""
    words = command.split()
    while words:
        word = words[0]
        if word in KEYWORDS or re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", word):
            words = words[1:]
        elif word == "timeout" and len(words) > 1:
            words = words[2:]
        else:
            break
    if words and words[0] in PROBES:
        # Redirections say nothing about what was asked: `... >/dev/null 2>&1` is the same probe.
        return " ".join(w for w in words if not re.match(r"^\d*>", w))
    return None


def loop_items(spec: str, dynamic: list[str]) -> list[str]:
    """The items of a `for VAR in SPEC` list."""
    items: list[str] = []
    spec = re.sub(r"\$\(\s*seq\s+(\d+)\s+(\d+)\s+(\d+)\s*\)",
                  lambda m: " ".join(map(str, range(int(m[1]), int(m[3]) + 1, int(m[2])))), spec)
    spec = re.sub(r"\{(\d+)\.\.(\d+)\.\.(\d+)\}",
                  lambda m: " ".join(map(str, range(int(m[1]), int(m[2]) + 1, int(m[3])))), spec)
    if "$(" in spec:
        return list(dynamic)
    for word in spec.split():
        items.append(word)
    return items


@dataclass
class Count:
    invocations: int = 0
    distinct: set[str] = field(default_factory=set)
    by_command: dict[str, int] = field(default_factory=dict)

    def add(self, probe: str) -> None:
        self.invocations += 1
        self.distinct.add(probe)
        word = probe.split()[0] + (" " + probe.split()[1] if probe.startswith("docker ") and len(probe.split()) > 1
                                    else "")
        self.by_command[word] = self.by_command.get(word, 0) + 1


# `var="text"` or `var=word` without a command substitution: the loop bodies' `container="nautilus-${engine}-engine"`.
_ASSIGN = re.compile(r'^\s*([A-Za-z_]\w*)=(?:"([^"$(]*(?:\$\{?\w+\}?[^"$(]*)*)"|([^\s"$(;|&]*))\s*$')
_FOR = re.compile(r"^\s*for\s+(\w+)\s+in\s+(.*?);\s*do\s*$")


def count_probes(script: str, dynamic: list[str] | None = None) -> Count:
    """Probes of a script, its loops unrolled (see the module's counting rule)."""
    lines = _strip_comments(script).splitlines()
    count = Count()
    _count_block(lines, 0, len(lines), {}, dynamic or [], count)
    return count


def _substitute(text: str, env: dict[str, str]) -> str:
    for name, value in env.items():
        text = re.sub(r"\$\{" + name + r"\}|\$" + name + r"\b", value, text)
    return text


def _count_block(lines: list[str], start: int, end: int, env: dict[str, str], dynamic: list[str],
                 count: Count) -> None:
    env = dict(env)  # assignments in this block stay in it
    i = start
    while i < end:
        match = _FOR.match(lines[i])
        if match:
            body_end = _loop_end(lines, i, end)
            spec = match[2]
            if "$(" in spec:  # the list command is itself a probe, run once
                for command in simple_commands(spec):
                    probe = probe_of(_substitute(command, env))
                    if probe:
                        count.add(probe)
            for item in loop_items(_substitute(spec, env), dynamic):
                _count_block(lines, i + 1, body_end, {**env, match[1]: item}, dynamic, count)
            i = body_end + 1
            continue
        assignment = _ASSIGN.match(lines[i])
        if assignment:
            env[assignment[1]] = _substitute(assignment[2] or assignment[3] or "", env)
        text = lines[i]
        # A quoted string over several lines (the guide's SQL) is one command.
        while text.count('"') % 2 and i + 1 < end:
            i += 1
            text += "\n" + lines[i]
        for command in simple_commands(_substitute(text, env)):
            probe = probe_of(command)
            if probe:
                count.add(probe)
        i += 1


def _loop_end(lines: list[str], start: int, end: int) -> int:
    depth = 0
    for j in range(start, end):
        if _FOR.match(lines[j]) or re.match(r"^\s*while\b.*;\s*do\s*$", lines[j]):
            depth += 1
        elif re.match(r"^\s*done\b", lines[j]):
            depth -= 1
            if depth == 0:
                return j
    raise GuideError(f"unterminated loop at line {start + 1}: {lines[start].strip()}")
