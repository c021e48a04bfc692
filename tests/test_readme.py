"""The README's examples work as written: each curl example runs, in the README's order,
with the real `curl`, against the production server (`scripts/serve.sh`) on a new
database with the demo data (`load_demo_data`), as a reader following the README does.

The convention, for README.md:

- An example is a fenced ```console, ```sh or ```bash block in which a command (a line
  starting with `$ `) calls curl. All of its commands run, in the README's order, in one
  shell state carried from block to block: a variable a block sets (`export TOKEN=…`,
  `key=$(…)`) is there in the next ones.
- A command goes on over the next lines while one of its quotes is open or its line
  ends with `\\`. The lines after it, up to the next `$ `, are what it prints: JSON (with
  `…` for what is left out), XML, or lines of text (`HTTP/1.1 201 Created`, headers).
- `http://127.0.0.1:8000` is replaced by the live server's address. A value shown in an
  output (a token, an ETag) that a later command uses is replaced, in that command, by
  the value the server gave at the same place.
- Files a command uploads (`-F photos=@lampadaire.jpg`) are made for it: real JPEG, PNG
  or WebP images.
- `<!-- readme-test: skip: <reason> -->` on a line before a block leaves it out.

Each command must exit with 0 and get no 5xx. Its statuses must be those it prints
(`HTTP/1.1 304 Not Modified`); an error it prints says which (a `validation_error` is
a 400, an Open311 error's `code` is its status, a few codes are named below, any other
error a 4xx); otherwise 2xx. What it prints must have the structure the README shows:
every key shown, at the same place, with a value of the same JSON type; the error
contract's `type`, `code` and `attr` (and a few more) as shown. Messages are compared
only when the command asks for a language (`Accept-Language`): they follow it.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from signalements.management.commands.load_demo_data import DEMO_OPEN311_KEY

from .images import jpeg_with_gps, png_with_text, webp_with_gps
from .live import DATABASES, ROOT, LiveServer, live_database, server_environment

README = ROOT / "README.md"
README_HOST = "http://127.0.0.1:8000"
SHELL_LANGUAGES = {"console", "sh", "bash", "shell"}
MARKER = re.compile(r"<!--\s*readme-test:\s*(.*?)\s*-->")
FENCE = re.compile(r"^(\s*)```(\S*)\s*$")
CALLS_CURL = re.compile(r"(?:^|[\s;|&(`])curl\s")
STATUS_LINE = "@readme-test-status "
# curl prints the status of each exchange on its standard error, after the transfer; the
# output the README shows (standard output) is left as it is. `-q` first: no ~/.curlrc.
SHELL_PRELUDE = f"curl() {{ command curl -q -w '%{{stderr}}\\n{STATUS_LINE}%{{http_code}}\\n' \"$@\"; }}\nset -a\n"
# The keys whose values are part of the contract, compared as shown.
EXACT_KEYS = {"type", "code", "attr", "status", "kind", "field", "role", "username"}
# Messages: compared when the command asks for a language.
MESSAGE_KEYS = {"detail", "description", "label"}
# The status of an error the README shows, by its code (drf-standardized-errors).
ERROR_STATUS = {
    "not_authenticated": 401,
    "authentication_failed": 401,
    "permission_denied": 403,
    "not_found": 404,
    "transition_not_allowed": 409,
    "idempotency_key_in_use": 409,
    "precondition_failed": 412,
    "idempotency_key_reused": 422,
    "precondition_required": 428,
    "throttled": 429,
}
UPLOADS = {
    ".jpg": jpeg_with_gps,
    ".jpeg": jpeg_with_gps,
    ".png": png_with_text,
    ".webp": webp_with_gps,
}


@dataclass
class Command:
    where: str  # "README.md:<line>"
    text: str
    output: str

    @property
    def calls_curl(self) -> bool:
        return bool(CALLS_CURL.search(self.text))

    @property
    def title(self) -> str:
        return f"{self.where}: $ {self.text.splitlines()[0]}"


@dataclass
class Block:
    line: int
    language: str
    commands: list[Command]
    markers: list[str] = field(default_factory=list)

    @property
    def is_example(self) -> bool:
        return self.language in SHELL_LANGUAGES and any(c.calls_curl for c in self.commands)

    @property
    def skipped(self) -> bool:
        return any(marker.startswith("skip") for marker in self.markers)


def incomplete(text: str) -> bool:
    """Whether a shell command goes on over the next line: an open quote, or a `\\`."""
    if text.endswith("\\"):
        return True
    try:
        shlex.split(text, comments=True)
    except ValueError:
        return True
    return False


def commands_of(lines: list[str], first_line: int) -> list[Command]:
    commands = []
    index = 0
    while index < len(lines):
        if not lines[index].startswith("$ "):
            index += 1
            continue
        start, text = index, lines[index][2:]
        while incomplete(text) and index + 1 < len(lines):
            index += 1
            text += "\n" + lines[index]
        index += 1
        output = []
        while index < len(lines) and not lines[index].startswith("$ "):
            output.append(lines[index])
            index += 1
        where = f"README.md:{first_line + start}"
        commands.append(Command(where, text, "\n".join(output).strip()))
    return commands


def readme_blocks(text: str) -> list[Block]:
    """The fenced blocks of the README, each with the markers just before it."""
    blocks, markers = [], []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        fence = FENCE.match(line)
        if fence is None:
            marker = MARKER.search(line)
            if marker:
                markers.append(marker.group(1))
            elif line.strip():
                markers = []
            index += 1
            continue
        indent, language = fence.groups()
        body, index = [], index + 1
        while index < len(lines) and lines[index].strip() != "```":
            body.append(lines[index].removeprefix(indent))
            index += 1
        first = index - len(body) + 1  # README line of the block's first line
        blocks.append(Block(first - 1, language, commands_of(body, first), markers))
        markers = []
        index += 1
    for block in blocks:
        for marker in block.markers:
            assert marker.startswith("skip:"), f"README.md:{block.line}: unknown {marker!r}"
    return blocks


# What the README shows a command printing.


def json_skeleton(text: str):
    """The JSON the README shows, `…` taken out: an elided value is `null` (anything),
    an elided member or item is dropped. ValueError when it is not JSON."""
    tokens = re.findall(r'"(?:[^"\\]|\\.)*"|…|[{}\[\]:,]|[^\s{}\[\]:,"…]+', text)
    kept = []
    for token in tokens:
        if token == "…":
            if kept and kept[-1] == ":":
                kept.append("null")
            continue
        kept.append(token)
    cleaned = []
    for index, token in enumerate(kept):
        following = kept[index + 1] if index + 1 < len(kept) else None
        if token == "," and (
            not cleaned or cleaned[-1] in ("[", "{", ",") or following in ("]", "}", ",")
        ):
            continue
        cleaned.append(token)
    return json.loads("".join(cleaned))


def is_opaque(value) -> bool:
    """A token, an ETag, a UUID: a value a later command may carry over."""
    return (
        isinstance(value, str)
        and len(value) >= 16
        and "…" not in value
        and re.fullmatch(r'[A-Za-z0-9_\-."]+', value) is not None
        and re.search(r"\d", value) is not None
    )


@dataclass
class Check:
    problems: list[str]
    carried: dict[str, str]  # a value shown in the README -> the server's
    messages: bool  # compare messages too


def compare_json(expected, actual, check: Check, path: str = "$", key: str | None = None):
    if expected is None:
        return
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            check.problems.append(f"{path}: an object expected, got {json.dumps(actual)[:80]}")
            return
        for name, value in expected.items():
            if name not in actual:
                check.problems.append(f"{path}: no {name!r} (keys: {sorted(actual)})")
            else:
                compare_json(value, actual[name], check, f"{path}.{name}", name)
        return
    if isinstance(expected, list):
        if not isinstance(actual, list):
            check.problems.append(f"{path}: a list expected, got {json.dumps(actual)[:80]}")
            return
        if len(actual) < len(expected):
            check.problems.append(f"{path}: {len(expected)} items shown, {len(actual)} given")
        for index, (item, got) in enumerate(zip(expected, actual, strict=False)):
            compare_json(item, got, check, f"{path}[{index}]", key)
        return
    if isinstance(expected, bool) or isinstance(actual, bool):
        same_type = isinstance(expected, bool) and isinstance(actual, bool)
    elif isinstance(expected, int | float):
        same_type = isinstance(actual, int | float)
    else:
        same_type = isinstance(actual, str)
    if not same_type:
        check.problems.append(f"{path}: {expected!r} shown, {actual!r} given (another type)")
    elif key in EXACT_KEYS or (check.messages and key in MESSAGE_KEYS):
        if expected != actual:
            check.problems.append(f"{path}: {expected!r} shown, {actual!r} given")
    elif is_opaque(expected) and expected != actual:
        check.carried[expected] = actual


def compare_xml(expected: str, actual: str, check: Check) -> None:
    expected_first, actual_first = expected.splitlines()[0], (actual.splitlines() or [""])[0]
    if expected_first != actual_first:
        check.problems.append(f"first line {actual_first!r}, {expected_first!r} shown")
    try:
        root = ElementTree.fromstring(actual.encode())
    except ElementTree.ParseError as error:
        check.problems.append(f"not XML: {error}")
        return
    shown = set(re.findall(r"<([A-Za-z_][\w.-]*)", expected))
    missing = shown - {element.tag for element in root.iter()}
    if missing:
        check.problems.append(f"elements shown but not given: {sorted(missing)}")


def shape(line: str) -> re.Pattern:
    """A line shown, as a pattern: its numbers and hexadecimal runs may differ."""
    pattern = ""
    for piece in re.split(r"([0-9a-f-]*\d[0-9a-f-]*|…)", line):
        if piece == "…":
            pattern += ".*"
        elif re.fullmatch(r"[0-9a-f-]*\d[0-9a-f-]*", piece):
            pattern += r"[0-9a-f-]+"
        else:
            pattern += re.escape(piece)
    return re.compile(pattern, re.IGNORECASE)


def line_matches(shown: str, given: str, check: Check) -> bool:
    status = re.match(r"HTTP/[\d.]+ (\d{3})\b", shown)
    if status:
        return re.match(rf"HTTP/[\d.]+ {status.group(1)}\b", given) is not None
    if shown.startswith(("{", "[")):  # a piece of JSON (cut): the same first key
        first = re.match(r'[\[{]+"(\w+)"', shown)
        return first is not None and re.match(rf'[\[{{]+"{first.group(1)}"', given) is not None
    header = re.fullmatch(r"([A-Za-z][\w-]*): (.*)", shown)
    if header:
        name, value = header.groups()
        got = re.fullmatch(rf"{re.escape(name)}: (.*)", given, re.IGNORECASE)
        if got is None:
            return False
        if not re.search(r"\d", value):
            return got.group(1).strip() == value
        if is_opaque(value) and got.group(1).strip() != value:
            check.carried[value] = got.group(1).strip()
        return shape(value).fullmatch(got.group(1).strip()) is not None
    return shape(shown).fullmatch(given) is not None


def compare_text(expected: str, actual: str, check: Check) -> None:
    """Each line shown is given, in the same order (headers in any case)."""
    given = [line.rstrip("\r") for line in actual.splitlines()]
    position = 0
    for shown in expected.splitlines():
        for index in range(position, len(given)):
            if line_matches(shown.strip(), given[index].strip(), check):
                position = index + 1
                break
        else:
            check.problems.append(f"line not given: {shown!r}")


def expected_statuses(command: Command) -> list[int] | str:
    """The statuses a command's output shows, or what they must be ("2xx", "4xx")."""
    lines = re.findall(r"^HTTP/[\d.]+ (\d{3})\b", command.output, re.MULTILINE)
    if lines:
        return [int(status) for status in lines]
    output = command.output
    if output.startswith("<?xml") and "<errors>" in output:
        return [int(re.search(r"<code>(\d+)</code>", output).group(1))]
    try:
        shown = json_skeleton(output) if output.startswith(("{", "[")) else None
    except ValueError:
        shown = None
    if isinstance(shown, dict) and "errors" in shown and "type" in shown:
        if shown["type"] == "validation_error":
            return [400]
        codes = [error.get("code") for error in shown["errors"]]
        return [ERROR_STATUS[codes[0]]] if codes and codes[0] in ERROR_STATUS else "4xx"
    if isinstance(shown, list) and shown and isinstance(shown[0], dict):
        if isinstance(shown[0].get("code"), int) and "description" in shown[0]:
            return [shown[0]["code"]]  # Open311's errors: the status as code
    return "2xx"


# Running them.


class Shell:
    """Commands run one by one by bash, in the work directory, with the variables the
    previous ones exported."""

    def __init__(self, server_url: str, workdir: Path):
        self.server_url = server_url
        self.workdir = workdir
        self.carried: dict[str, str] = {}
        python_bin = str(Path(sys.executable).parent)
        self.env = {
            name: value
            for name, value in os.environ.items()
            if "proxy" not in name.lower() and name != "CURL_HOME"
        }
        self.env.update(HOME=str(workdir), PATH=f"{python_bin}{os.pathsep}{os.environ['PATH']}")

    def prepare(self, command: Command) -> str:
        text = command.text.replace(README_HOST, self.server_url)
        for shown, given in self.carried.items():
            text = text.replace(shown, given)
        for name in re.findall(r"@([\w.-]+\.\w+)", text):
            make = UPLOADS.get(Path(name).suffix.lower())
            if make and not (self.workdir / name).exists():
                (self.workdir / name).write_bytes(make())
        return text

    def run(self, command: Command) -> subprocess.CompletedProcess:
        env_file = self.workdir.parent / "readme-test.env"
        script = (
            f"{SHELL_PRELUDE}{self.prepare(command)}\n"
            f'__readme_test_rc=$?\nenv -0 > "{env_file}"\nexit $__readme_test_rc\n'
        )
        result = subprocess.run(
            ["bash", "-c", script],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if env_file.exists():
            pairs = env_file.read_text().split("\0")
            self.env = dict(pair.split("=", 1) for pair in pairs if "=" in pair)
            self.env = {k: v for k, v in self.env.items() if not k.startswith("__readme")}
        return result


def check_command(shell: Shell, command: Command) -> list[str]:
    result = shell.run(command)
    check = Check([], shell.carried, messages="Accept-Language" in command.text)
    if result.returncode != 0:
        check.problems.append(f"exit status {result.returncode}")
    if command.calls_curl:
        statuses = [
            int(line.removeprefix(STATUS_LINE))
            for line in result.stderr.splitlines()
            if line.startswith(STATUS_LINE)
        ]
        wanted = expected_statuses(command)
        if not statuses or 0 in statuses:
            check.problems.append(f"no HTTP answer: {result.stderr.strip()[:300]}")
        elif any(status >= 500 for status in statuses):
            check.problems.append(f"a server error: {statuses}")
        elif isinstance(wanted, list):
            if statuses != wanted:
                check.problems.append(f"status {statuses}, the README shows {wanted}")
        elif any(status // 100 != int(wanted[0]) for status in statuses):
            check.problems.append(f"status {statuses}, {wanted} expected")
    expected, actual = command.output, result.stdout.strip()
    if expected:
        if expected.startswith("<?xml"):
            compare_xml(expected, actual, check)
        else:
            try:
                shown = json_skeleton(expected) if expected.startswith(("{", "[")) else None
            except ValueError:
                shown = None
            if shown is None:
                compare_text(expected, actual, check)
            else:
                try:
                    compare_json(shown, json.loads(actual), check)
                except ValueError:
                    check.problems.append("not JSON")
    if not check.problems:
        return []
    return [
        f"{command.title}\n  "
        + "\n  ".join(check.problems)
        + f"\n  printed: {actual[:600]!r}\n  stderr: {result.stderr.strip()[:300]!r}"
    ]


@pytest.fixture(scope="module", params=DATABASES)
def demo_server(request, tmp_path_factory):
    """The production server on a new database with the demo data; its address, and
    what `load_demo_data` printed."""
    tmp_path = tmp_path_factory.mktemp("readme")
    with live_database(request.param, tmp_path) as database_url:
        loaded = subprocess.run(
            [sys.executable, "manage.py", "load_demo_data"],
            cwd=ROOT,
            env=server_environment(database_url),
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        )
        server = LiveServer(database_url, workers=1, MEDIA_ROOT=str(tmp_path / "media"))
        try:
            yield f"http://127.0.0.1:{server.port}", loaded.stdout, tmp_path
        finally:
            server.stop()


def test_the_readme_examples_work_as_written(demo_server):
    server_url, _, tmp_path = demo_server
    blocks = readme_blocks(README.read_text())
    examples = [block for block in blocks if block.is_example and not block.skipped]
    workdir = tmp_path / "reader"
    workdir.mkdir()
    shell = Shell(server_url, workdir)
    failures = []
    ran = 0
    for block in examples:
        for command in block.commands:
            failures += check_command(shell, command)
            ran += 1
    assert ran >= 40, f"only {ran} commands found in the README's examples"
    assert not failures, f"{len(failures)} of {ran} README commands:\n\n" + "\n\n".join(failures)


def make_run(**variables: str) -> tuple[str, list[str]]:
    """What `make run` prints once the demo data is loaded (its `echo` lines, run), and
    the commands it runs (`make -n`: nothing is run)."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("HOST", "PORT") and not name.startswith("MAKE")
    }
    assignments = [f"{name}={value}" for name, value in variables.items()]
    dry_run = subprocess.run(
        ["make", "--no-print-directory", "-n", "run", *assignments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.splitlines()
    echoes = "\n".join(line for line in dry_run if line == "echo" or line.startswith("echo "))
    printed = subprocess.run(["sh", "-c", echoes], capture_output=True, text=True, check=True)
    return printed.stdout, dry_run


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_the_quick_start_shows_what_make_run_prints(demo_server):
    """The quick start's `make run` output is what `load_demo_data` and the Makefile
    print (every line shown, in order), and the Open311 example printed works."""
    server_url, loaded, tmp_path = demo_server
    [shown] = [
        block.commands[0]
        for block in readme_blocks(README.read_text())
        if block.commands and block.commands[0].text == "make run"
    ]
    printed, _ = make_run()
    given = (loaded + printed).splitlines()
    position = 0
    for line in shown.output.splitlines():
        if line == "…":
            continue
        assert line in given[position:], f"make run does not print {line!r}:\n" + "\n".join(given)
        position = given.index(line, position) + 1
    [example] = [line.strip() for line in printed.splitlines() if line.strip().startswith("curl ")]
    workdir = tmp_path / "make-run"
    workdir.mkdir()
    command = Command(
        "make run", example, '[{"service_request_id":"SIG-2026-000051","service_notice":null}]'
    )
    assert check_command(Shell(server_url, workdir), command) == []


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_run_prints_where_it_serves_after_the_demo_data():
    printed, commands = make_run(HOST="127.0.0.2", PORT="8765")

    assert set(re.findall(r"https?://[^\s/]+", printed)) == {"http://127.0.0.2:8765"}
    assert f"api_key={DEMO_OPEN311_KEY} " in printed
    [load] = [index for index, line in enumerate(commands) if "load_demo_data" in line]
    [serve] = [index for index, line in enumerate(commands) if " runserver " in line]
    assert commands[serve].endswith("runserver 127.0.0.2:8765")
    echoes = [index for index, line in enumerate(commands) if line.startswith("echo")]
    assert load < min(echoes) and max(echoes) < serve  # after the demo data, before serving


def test_the_convention_reads_examples_as_documented():
    text = "\n".join(
        [
            "Text.",
            "",
            "```console",
            "$ curl -s -X POST http://127.0.0.1:8000/x/ -d '{",  # a quote left open
            '    "a": 1}\'',
            '{"id":51,"uuid":"4f50…",…,"items":[…],"total":…}',
            "$ curl -s http://127.0.0.1:8000/y/ \\",
            "    -H 'Accept: text/plain'   # a comment, don't stop here",
            "$ ls",
            "```",
            "<!-- readme-test: skip: needs a production deployment -->",
            "",
            "```sh",
            "$ curl -s https://signalements.example.org/api/",
            "```",
            "```console",
            "$ make run",
            "```",
        ]
    )

    first, skipped, other = readme_blocks(text)

    assert first.is_example and not first.skipped and first.line == 3
    post, get, listing = first.commands
    assert post.where == "README.md:4" and post.text.endswith('"a": 1}\'')
    assert json_skeleton(post.output) == {"id": 51, "uuid": "4f50…", "items": [], "total": None}
    assert get.text.count("\n") == 1 and get.output == "" and get.calls_curl
    assert listing.text == "ls" and not listing.calls_curl
    assert skipped.is_example and skipped.skipped
    assert not other.is_example
    with pytest.raises(AssertionError, match="unknown"):
        readme_blocks("<!-- readme-test: run twice -->\n```console\n$ curl -s x\n```")
