"""`make bench`: the project against the seed's FastAPI design, on the same machine, in
the same run, with the same rows, on PostgreSQL (default) or SQLite (`BENCH_DB=sqlite`).

    scripts/with-postgres.sh .venv/bin/python bench/run.py [--rows N] [--duration 10s]
        [--connections 16] [--threads 2] [--warmup 2s] [--db postgresql|sqlite]
        [--output bench/results.md]

On PostgreSQL it runs under scripts/with-postgres.sh (which exports DATABASE_URL for a
throwaway cluster); on SQLite each server gets a file in a temporary directory. The
project runs with its own Python, the seed from bench/seed with .venv-bench/. Python's
standard library only. Steps:

1. two databases, one per server; the project's migrated;
2. the same N reports (description and date) loaded into both, in bulk
   (bench/load_project.py through the Django ORM, bench/load_seed.py through the seed's
   SQLAlchemy model); `collectstatic` for the project;
3. each server in turn, never both at once, with 2 worker processes: the project as
   `make serve` runs it (scripts/serve.sh: granian, DEBUG off; throttles off, no access
   log), the seed with uvicorn. Once it answers, every endpoint is checked once (status,
   JSON shape, the loaded values, no redirect), then each scenario (SCENARIOS) is warmed
   up, then each measured with wrk; the project's workers' memory is read after the
   warm-ups and at the end;
4. a Markdown table, with each target judged, printed and written into this database's
   section of bench/results.md (the other database's section is kept).

Any non-2xx response or socket error in a measurement fails the run (exit 1): a
benchmark of errors is worthless. A slower project is not an error.
"""

import argparse
import datetime as dt
import itertools
import json
import os
import platform
import random
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SEED_DIR = BENCH / "seed"
SEED_PYTHON = ROOT / ".venv-bench" / "bin" / "python"
CREATE_SCRIPT = BENCH / "create.lua"
WORKERS = 2
WRK_TIMEOUT = "10s"
CREATE_BODY = {"description": "Panne électrique", "date": "2025-04-29T16:30:00+02:00"}

DESCRIPTIONS = [
    "Panne électrique",
    "Lampadaire éteint",
    "Nid-de-poule dangereux",
    "Dépôt sauvage d'encombrants",
    "Feu tricolore en panne",
    "Fuite d'eau sur la chaussée",
    "Trottoir dégradé",
    "Poubelle débordante",
    "Branche tombée sur la piste cyclable",
    "Tag sur la façade de l'école",
]
STREETS = [
    "rue de Brest",
    "boulevard de la Liberté",
    "place Sainte-Anne",
    "avenue Janvier",
    "quai Lamartine",
    "rue Saint-Malo",
]
FIRST_DATE = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
DATE_SPAN_SECONDS = 480 * 24 * 3600  # up to late April 2025: never in the future


class BenchError(Exception):
    """Stops the run: printed, exit 1."""


# --- Data -----------------------------------------------------------------------------


def make_rows(count: int, seed: int = 2025) -> list[list[str]]:
    """The reports loaded into both databases: [description, ISO date] pairs, the same
    for the same count on every run."""
    rng = random.Random(seed)
    rows = []
    for number in range(1, count + 1):
        description = (
            f"{rng.choice(DESCRIPTIONS)}, {rng.randint(1, 120)} {rng.choice(STREETS)} "
            f"(report {number} of the benchmark)"
        )
        date = FIRST_DATE + dt.timedelta(seconds=rng.randrange(DATE_SPAN_SECONDS))
        rows.append([description, date.isoformat()])
    return rows


# --- wrk ------------------------------------------------------------------------------

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


@dataclass
class WrkResult:
    requests: int
    requests_per_sec: float
    latency_ms: dict[int, float]  # percentile -> milliseconds
    non_2xx: int = 0  # wrk counts statuses >= 400 ("Non-2xx or 3xx responses")
    socket_errors: dict[str, int] = field(default_factory=dict)

    @property
    def errors(self) -> list[str]:
        problems = []
        if self.requests == 0:
            problems.append("no request completed")
        if self.non_2xx:
            problems.append(f"{self.non_2xx} non-2xx responses")
        problems += [
            f"{count} socket {kind} errors" for kind, count in self.socket_errors.items() if count
        ]
        return problems


def _duration_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not match:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match[1]) * _UNITS_MS[match[2]]


def parse_wrk(output: str) -> WrkResult:
    """Reads wrk's report (run with --latency)."""
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    total = re.search(r"^\s*(\d+) requests in ", output, re.M)
    if not rate or not total:
        raise ValueError(f"not a wrk report:\n{output}")
    latency = {
        int(percent): _duration_ms(value)
        for percent, value in re.findall(r"^\s+(\d+)%\s+(\S+)\s*$", output, re.M)
    }
    socket_errors = {}
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if errors:
        socket_errors = dict(
            zip(("connect", "read", "write", "timeout"), map(int, errors.groups()), strict=True)
        )
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return WrkResult(
        requests=int(total[1]),
        requests_per_sec=float(rate[1]),
        latency_ms=latency,
        non_2xx=int(non_2xx[1]) if non_2xx else 0,
        socket_errors=socket_errors,
    )


def wrk_command(url: str, settings: "Settings", duration: str, script: Path | None) -> list[str]:
    command = [
        "wrk",
        f"-t{settings.threads}",
        f"-c{settings.connections}",
        f"-d{duration}",
        # A response slower than this is a socket error (the run fails); wrk's default,
        # 2 s, is shorter than what the seed's SQLite writes take under load.
        f"--timeout={WRK_TIMEOUT}",
        "--latency",
    ]
    if script:
        command += ["-s", str(script)]
    # The run's number, given to the scripts (init's args): the cold scenarios' counters
    # start again in each run, and must not ask again what the warm-up asked.
    return [*command, url, "--", str(next(_runs))]


_runs = itertools.count(1)


def run_wrk(url: str, settings: "Settings", duration: str, script: Path | None) -> WrkResult:
    command = wrk_command(url, settings, duration, script)
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise BenchError(f"{shlex.join(command)} failed:\n{completed.stdout}{completed.stderr}")
    result = parse_wrk(completed.stdout)
    if result.errors:
        raise BenchError(f"{shlex.join(command)}: {', '.join(result.errors)}\n{completed.stdout}")
    return result


# --- Servers --------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    command: list[str]
    cwd: Path
    env: dict[str, str]
    list_path: str
    detail_path: str
    create_path: str
    paginated: bool
    log: Path
    port: int = 0
    process: subprocess.Popen | None = None
    # Lua expressions of the list page `page` and of the report `number` (wrk scripts).
    list_lua: str = ""
    detail_lua: str = ""

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped whole
            )

    def stop(self) -> None:
        """Its whole process group: gently, then not, so that no worker outlives it."""
        if self.process is None:
            return
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])

    def wait_until_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"{self.name} server exited:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.base + self.list_path, timeout=5) as response:
                    if response.status == 200:
                        return
            except (OSError, urllib.error.HTTPError):
                pass
            time.sleep(0.2)
        raise BenchError(
            f"{self.name} server not answering after {timeout:.0f}s:\n{self.log_tail()}"
        )


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a 3xx is an answer to check, not to follow: wrk counts it as a success


_opener = urllib.request.build_opener(_NoRedirect)


def fetch(method: str, url: str, body: dict | None = None) -> tuple[int, object]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Accept", "application/json")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with _opener.open(request, timeout=30) as response:
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, payload = error.code, error.read()
    try:
        return status, json.loads(payload)
    except ValueError:
        return status, payload[:500]


def same_instant(served: str, loaded: str) -> bool:
    """The seed serves naive UTC datetimes, the project aware local ones."""
    try:
        served_date = dt.datetime.fromisoformat(served)
    except (TypeError, ValueError):
        return False
    if served_date.tzinfo is None:
        served_date = served_date.replace(tzinfo=dt.UTC)
    return served_date == dt.datetime.fromisoformat(loaded)


def check_endpoints(server: Server, rows: list[list[str]], detail_id: int) -> None:
    """Every endpoint once, before any load: right status, right shape, loaded values."""
    problems = []
    status, body = fetch("GET", server.base + server.list_path)
    items = body.get("results") if server.paginated and isinstance(body, dict) else body
    if status != 200:
        problems.append(f"list: status {status}: {body!r:.300}")
    elif server.paginated and not (
        isinstance(body, dict) and {"count", "next", "previous", "results"} <= body.keys()
    ):
        problems.append(f"list: not a page {{count, next, previous, results}}: {body!r:.300}")
    elif not isinstance(items, list) or len(items) != 100:
        problems.append(f"list: not a list of 100 items: {body!r:.300}")
    elif not all(
        isinstance(item, dict) and {"id", "description", "date"} <= item.keys() for item in items
    ):
        problems.append(f"list: items without id, description, date: {items[0]!r:.300}")

    status, body = fetch("GET", server.base + server.detail_path)
    description, date = rows[detail_id - 1]
    if status != 200:
        problems.append(f"detail: status {status}: {body!r:.300}")
    elif not (
        isinstance(body, dict)
        and body.get("id") == detail_id
        and body.get("description") == description
        and same_instant(body.get("date", ""), date)
    ):
        problems.append(
            f"detail: not report {detail_id} as loaded ({description!r}, {date}): {body!r:.300}"
        )

    status, body = fetch("POST", server.base + server.create_path, CREATE_BODY)
    if status != 201:
        problems.append(f"create: status {status}: {body!r:.300}")
    elif not (
        isinstance(body, dict)
        and isinstance(body.get("id"), int)
        and body.get("description") == CREATE_BODY["description"]
    ):
        problems.append(f"create: unexpected answer: {body!r:.300}")
    if problems:
        raise BenchError(f"{server.name}: endpoint check failed:\n  " + "\n  ".join(problems))


# --- Settings, PostgreSQL, environment ------------------------------------------------


@dataclass
class Settings:
    rows: int
    duration: str
    connections: int
    threads: int
    warmup: str
    output: Path
    db: str = "postgresql"

    @property
    def wrk_parameters(self) -> str:
        return (
            f"-t{self.threads} -c{self.connections} -d{self.duration} "
            f"--timeout={WRK_TIMEOUT} --latency"
        )


def parse_args(argv: list[str]) -> Settings:
    env = os.environ
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=int(env.get("BENCH_ROWS") or 10_000))
    parser.add_argument("--duration", default=env.get("BENCH_DURATION") or "10s")
    parser.add_argument("--connections", type=int, default=int(env.get("BENCH_CONNECTIONS") or 16))
    parser.add_argument("--threads", type=int, default=int(env.get("BENCH_THREADS") or 2))
    parser.add_argument("--warmup", default=env.get("BENCH_WARMUP") or "2s")
    parser.add_argument(
        "--db", choices=["postgresql", "sqlite"], default=env.get("BENCH_DB") or "postgresql"
    )
    parser.add_argument(
        "--output", type=Path, default=Path(env.get("BENCH_OUTPUT") or BENCH / "results.md")
    )
    args = parser.parse_args(argv)
    if args.rows < 100:
        parser.error("--rows: at least 100 (the list scenario reads 100)")
    if args.threads > args.connections:
        parser.error("--threads: at most --connections (wrk needs a connection per thread)")
    for name in ("duration", "warmup"):
        if not re.fullmatch(r"\d+[smh]?", getattr(args, name)):
            parser.error(f"--{name}: a wrk duration such as 10s, 1m")
    return Settings(**vars(args))


def command_line(argv: list[str]) -> str:
    """How to run this again: `make bench` with the knobs that were set."""
    knobs = ("BENCH_DB", "BENCH_ROWS", "BENCH_DURATION", "BENCH_CONNECTIONS", "BENCH_THREADS")
    return rerun_command(
        argv,
        knobs=(*knobs, "BENCH_WARMUP"),
        target="bench",
        script="bench/run.py",
        postgres=os.environ.get("BENCH_DB") != "sqlite",
    )


def rerun_command(
    argv: list[str], *, knobs: tuple[str, ...], target: str, script: str, postgres: bool
) -> str:
    """How to run a benchmark again: `make <target>` with the knobs (environment
    variables) that were set, or its script with its arguments (under a throwaway
    PostgreSQL cluster when `postgres`)."""
    given = [f"{name}={shlex.quote(os.environ[name])}" for name in knobs if os.environ.get(name)]
    if os.environ.get("MAKELEVEL") and not argv:
        return " ".join([*given, "make", target])
    here = os.path.relpath(Path(sys.executable), ROOT) if sys.executable else "python3"
    wrapper = ["scripts/with-postgres.sh"] if postgres else []
    return " ".join([*given, *wrapper, here, script, *map(shlex.quote, argv)])


def psql_binary() -> str:
    found = shutil.which("psql")
    if found:
        return found
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/psql"),
        key=lambda path: [int(part) for part in re.findall(r"\d+", path.parent.parent.name)],
    )
    if not candidates:
        raise BenchError("psql not found: apt-get install -y postgresql")
    return str(candidates[-1])


def sql(url: str, statement: str) -> str:
    completed = subprocess.run(
        [
            psql_binary(),
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-c",
            statement,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise BenchError(f"psql {statement!r}: {completed.stderr.strip()}")
    return completed.stdout.strip()


def with_database(url: str, name: str, scheme: str | None = None) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(scheme=scheme or parts.scheme, path=f"/{name}"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_step(description: str, command: list[str], **kwargs) -> str:
    print(f"  {description}", flush=True)
    completed = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)
    if completed.returncode != 0:
        raise BenchError(
            f"{description} failed ({shlex.join(command)}):\n{completed.stdout}{completed.stderr}"
        )
    return completed.stdout


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def versions(python: Path | str, packages: list[str]) -> str:
    code = (
        "import importlib.metadata as m, sys\n"
        "print(', '.join(f'{p} {m.version(p)}' for p in sys.argv[1:]))"
    )
    completed = subprocess.run(
        [str(python), "-c", code, *packages], capture_output=True, text=True, check=False
    )
    return completed.stdout.strip() or "unknown"


APPLICATION = ["signalements", "signalements_project", "manage.py", "requirements.txt"]


def revision() -> str:
    """The measured code: the last commit that changed the application (the bench's own
    files do not count), and whether the work tree changes it."""

    def git(*args: str) -> str:
        completed = subprocess.run(
            ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False
        )
        return completed.stdout.strip() if completed.returncode == 0 else ""

    commit = git("log", "-1", "--format=%h", "--", *APPLICATION)
    if not commit:
        return "unknown (not a git checkout)"
    dirty = git("status", "--porcelain", "--", *APPLICATION)
    return f"{commit} with uncommitted changes" if dirty else commit


# --- Report ---------------------------------------------------------------------------


# The scenarios, their targets (project ÷ seed, from issue "Wave 2 · 2/9") and how each
# server is asked. Warm: the same request again and again, as a map or an app polling a
# public list. Cold: every request misses any cache (another page or report each time,
# and a counter in the query string that no cache has seen). Mixed: 40 % the list, 40 %
# a report, 20 % creates, in one script: the writes change the data between the reads.
SCENARIOS = [
    "List of 100, warm",
    "Detail, warm",
    "List of 100, cold",
    "Detail, cold",
    "Create",
    "Mixed 80/20",
]
TARGETS = {
    "List of 100, warm": 3.0,
    "Detail, warm": 2.0,
    "List of 100, cold": 1.0,
    "Detail, cold": 1.0,
    "Create": 2.0,
    "Mixed 80/20": 1.5,
}
CREATE_P99_TARGET_MS = 100.0
PAGES = 20

LUA_PRELUDE = """
local counter = 0
local rows = {rows}
-- Each wrk thread gets its own number (`id`), and each run its own (`run`, the first
-- argument), so that no two threads or runs send the same counter, and no two threads
-- draw the same random reports.
function setup(thread)
  setup_count = (setup_count or 0) + 1
  thread:set("id", setup_count)
end
local run = 0
function init(args)
  run = tonumber(args[1]) or 0
  math.randomseed(1000 + (id or 0))
end
local function nonce()
  counter = counter + 1
  return (run * 100 + (id or 0)) * 1000000000 + counter
end
local function list_path(page)
  return {list}
end
local function detail_path(number)
  return {detail}
end
local create_headers = {{["Content-Type"] = "application/json"}}
local create_body = '{body}'
"""
LUA_BODIES = {
    "List of 100, cold": """
request = function()
  local n = nonce()
  return wrk.format("GET", list_path(n % PAGES + 1) .. "&nocache=" .. n)
end
""",
    "Detail, cold": """
request = function()
  local n = nonce()
  return wrk.format("GET", detail_path((n * 7919) % rows + 1) .. "?nocache=" .. n)
end
""",
    "Mixed 80/20": """
request = function()
  local r = math.random()
  if r < 0.4 then
    return wrk.format("GET", list_path(1))
  elseif r < 0.8 then
    return wrk.format("GET", detail_path(math.random(rows)))
  end
  return wrk.format("POST", "/api/signalements/", create_headers, create_body)
end
""",
}


def lua_script(server: "Server", scenario: str, rows: int, workdir: Path) -> Path:
    """The wrk script of a scenario for a server, written into `workdir`."""
    prelude = LUA_PRELUDE.format(
        rows=rows,
        list=server.list_lua,
        detail=server.detail_lua,
        body=json.dumps(CREATE_BODY, ensure_ascii=False),
    )
    path = workdir / f"{server.name}-{re.sub(r'[^a-z0-9]+', '-', scenario.lower()).strip('-')}.lua"
    pages = max(1, min(PAGES, rows // 100))  # full pages of 100 only
    path.write_text(f"PAGES = {pages}\n{prelude}{LUA_BODIES[scenario]}", encoding="utf-8")
    return path


def _latency(result: WrkResult) -> str:
    return " / ".join(f"{result.latency_ms[p]:.1f}" for p in (50, 99))


def verdict(name: str, project: WrkResult, seed: WrkResult) -> str:
    ratio = project.requests_per_sec / seed.requests_per_sec
    met = ratio >= TARGETS[name]
    if name == "Create":
        met = met and project.latency_ms[99] < CREATE_P99_TARGET_MS
        return f"≥ {TARGETS[name]:g}×, p99 < {CREATE_P99_TARGET_MS:g} ms: {'met' if met else 'not met'}"
    return f"≥ {TARGETS[name]:g}×: {'met' if met else 'not met'}"


def render_table(results: dict[str, dict[str, WrkResult]]) -> list[str]:
    lines = [
        "| Scenario | Project req/s | Seed req/s | Project ÷ seed | Target | "
        "Project p50 / p99 ms | Seed p50 / p99 ms |",
        "|---|--:|--:|--:|---|--:|--:|",
    ]
    for name in SCENARIOS:
        project, seed = results["project"][name], results["seed"][name]
        ratio = project.requests_per_sec / seed.requests_per_sec
        lines.append(
            f"| {name} | {project.requests_per_sec:,.0f} | {seed.requests_per_sec:,.0f} | "
            f"{ratio:.2f}× | {verdict(name, project, seed)} | {_latency(project)} | "
            f"{_latency(seed)} |"
        )
    return lines


def render(
    results: dict[str, dict[str, WrkResult]], facts: list[tuple[str, str]], db: str = "postgresql"
) -> str:
    """The section of bench/results.md for one database."""
    lines = [
        f"## {DATABASE_TITLES[db]}",
        "",
        *render_table(results),
        "",
        *(f"- {label}: {value}" for label, value in facts),
        "",
    ]
    return "\n".join(lines)


DATABASE_TITLES = {"postgresql": "PostgreSQL", "sqlite": "SQLite"}
RESULTS_HEADER = """# Benchmark: the project against the seed's FastAPI design

Requests per second (higher is better) and latency percentiles p50 / p99 in
milliseconds (lower is better); project ÷ seed above 1 means the project is faster. One
section per database, each from its latest `make bench` (`BENCH_DB=sqlite make bench`
for SQLite).
"""


def merge_results(existing: str, section: str, db: str) -> str:
    """bench/results.md with this database's section replaced (the other kept)."""
    sections = {}
    for title_db, title in DATABASE_TITLES.items():
        match = re.search(rf"^## {title}\n.*?(?=^## |\Z)", existing, re.M | re.S)
        if match and title_db != db:
            sections[title_db] = match[0].rstrip() + "\n"
    sections[db] = section.rstrip() + "\n"
    ordered = [sections[name] for name in DATABASE_TITLES if name in sections]
    return RESULTS_HEADER + "\n" + "\n".join(ordered)


# --- Main -----------------------------------------------------------------------------


def _raise_system_exit(signum, frame):
    raise SystemExit(128 + signum)


def check_prerequisites(settings: Settings) -> str:
    """The PostgreSQL cluster's URL ("" on SQLite), once everything the run needs is
    there."""
    admin_url = os.environ.get("DATABASE_URL", "")
    if settings.db == "postgresql" and not admin_url.startswith(("postgres://", "postgresql://")):
        raise BenchError(
            "DATABASE_URL is not a PostgreSQL URL: run `make bench`, or this script under "
            "scripts/with-postgres.sh (or BENCH_DB=sqlite)"
        )
    if not shutil.which("wrk"):
        raise BenchError("wrk not found: apt-get install -y wrk (make bench does it as root)")
    if not SEED_PYTHON.exists():
        raise BenchError(f"{SEED_PYTHON} not found: make bench creates it")
    return admin_url if settings.db == "postgresql" else ""


def prepare(
    settings: Settings, admin_url: str, rows: list[list[str]], workdir: Path
) -> tuple[dict, dict]:
    """Both databases created and loaded with the same rows; the project migrated and its
    static files collected. Returns the servers' environments (project, seed)."""
    if settings.db == "postgresql":
        for name in ("bench_project", "bench_seed"):
            sql(admin_url, f"DROP DATABASE IF EXISTS {name}")
            sql(admin_url, f"CREATE DATABASE {name}")
        project_url = with_database(admin_url, "bench_project")
        seed_url = with_database(admin_url, "bench_seed", "postgresql+psycopg")
    else:
        project_url = f"sqlite:///{workdir / 'project.sqlite3'}"
        seed_url = f"sqlite:///{workdir / 'seed.sqlite3'}"
    rows_file = workdir / "rows.json"
    rows_file.write_text(json.dumps(rows), encoding="utf-8")

    project_env = {
        **os.environ,
        # Production settings, as `make serve` has them, less the rate limits.
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        # Plain HTTP on loopback, no proxy: not redirected to HTTPS (on by default).
        "SECURE_SSL_REDIRECT": "0",
        "DATABASE_URL": project_url,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "THROTTLE_ANON_CREATE": "",
        "THROTTLE_USER_WRITE": "",
        "THROTTLE_LOGIN": "",
        "LOG_LEVEL": "WARNING",
        "WEB_CONCURRENCY": str(WORKERS),
        "ACCESS_LOG": "0",
        "MEDIA_ROOT": str(workdir / "media"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    seed_env = {**os.environ, "SEED_DATABASE_URL": seed_url}
    manage = [sys.executable, "manage.py"]
    in_project = {"cwd": ROOT, "env": project_env}
    print(f"Preparing: {len(rows):,} reports in each database", flush=True)
    run_step(
        "project: check --deploy",
        [*manage, "check", "--deploy", "--fail-level", "ERROR"],
        **in_project,
    )
    run_step("project: migrate", [*manage, "migrate", "--noinput", "-v0"], **in_project)
    run_step(
        "project: load the reports",
        [sys.executable, str(BENCH / "load_project.py"), str(rows_file)],
        **in_project,
    )
    run_step("project: collectstatic", [*manage, "collectstatic", "--noinput", "-v0"], **in_project)
    run_step(
        "seed: load the reports",
        [str(SEED_PYTHON), str(BENCH / "load_seed.py"), str(rows_file)],
        cwd=SEED_DIR,
        env=seed_env,
    )
    if settings.db == "postgresql":
        for name in ("bench_project", "bench_seed"):
            sql(with_database(admin_url, name), "VACUUM ANALYZE")
    return project_env, seed_env


def make_servers(project_env: dict, seed_env: dict, detail_id: int, workdir: Path) -> list[Server]:
    project_port, seed_port = free_port(), free_port()
    return [
        Server(
            name="project",
            command=[str(ROOT / "scripts" / "serve.sh")],
            cwd=ROOT,
            env={**project_env, "HOST": "127.0.0.1", "PORT": str(project_port)},
            list_path="/api/signalements/?page_size=100",
            detail_path=f"/api/signalements/{detail_id}/",
            create_path="/api/signalements/",
            paginated=True,
            log=workdir / "project.log",
            port=project_port,
            list_lua='"/api/signalements/?page_size=100&page=" .. page',
            detail_lua='"/api/signalements/" .. number .. "/"',
        ),
        Server(
            name="seed",
            command=[
                str(SEED_PYTHON),
                *("-m", "uvicorn", "app.main:app"),
                *("--host", "127.0.0.1", "--port", str(seed_port), "--workers", str(WORKERS)),
                "--no-access-log",
            ],
            cwd=SEED_DIR,
            env=seed_env,
            list_path="/api/signalements/?limit=100",
            detail_path=f"/api/signalements/{detail_id}",
            create_path="/api/signalements/",
            paginated=False,
            log=workdir / "seed.log",
            port=seed_port,
            list_lua='"/api/signalements/?limit=100&skip=" .. ((page - 1) * 100)',
            detail_lua='"/api/signalements/" .. number',
        ),
    ]


def worker_rss_mb(server: Server) -> dict[int, float]:
    """Resident memory of each worker of a server, in MB: the processes of its process
    group but the first (the server's supervisor)."""
    found = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            pid = int(status.parent.name)
            if pid == server.process.pid or os.getpgid(pid) != server.process.pid:
                continue
            for line in status.read_text().splitlines():
                if line.startswith("VmRSS:"):
                    found[pid] = int(line.split()[1]) / 1024
        except (OSError, ValueError):
            continue
    return found


def memory_report(start: dict[int, float], end: dict[int, float], list_requests: int) -> str:
    changes = [
        f"{start[pid]:.0f} → {end[pid]:.0f} MB ({(end[pid] - start[pid]) / start[pid]:+.1%})"
        for pid in sorted(start)
        if pid in end
    ]
    return f"over {list_requests:,} list requests: " + "; ".join(changes)


def measure(
    server: Server, settings: Settings, rows: list[list[str]], detail_id: int, workdir: Path
) -> tuple[dict[str, WrkResult], str]:
    """Starts the server, checks it, runs every scenario, stops it (even on failure)."""
    print(f"{server.name}: {shlex.join(server.command)}", flush=True)
    results = {}
    memory = ""
    try:
        server.start()
        server.wait_until_ready()
        check_endpoints(server, rows, detail_id)
        targets = {}
        for name in SCENARIOS:
            if name in LUA_BODIES:
                targets[name] = server.base, lua_script(server, name, settings.rows, workdir)
            elif name == "Create":
                targets[name] = server.base + server.create_path, CREATE_SCRIPT
            else:
                path = server.list_path if name.startswith("List") else server.detail_path
                targets[name] = server.base + path, None
        # Every scenario warmed up first, so that the memory read next is the workers'
        # running size, then each measured.
        for url, script in targets.values():
            run_wrk(url, settings, settings.warmup, script)
        rss_start = worker_rss_mb(server)
        for name in SCENARIOS:
            url, script = targets[name]
            result = results[name] = run_wrk(url, settings, settings.duration, script)
            print(
                f"  {name:<18} {result.requests_per_sec:>9,.1f} req/s   "
                f"p50 {result.latency_ms[50]:.1f} ms   p99 {result.latency_ms[99]:.1f} ms"
                + (
                    "   RSS " + ", ".join(f"{mb:.0f}" for mb in worker_rss_mb(server).values())
                    if server.name == "project"
                    else ""
                ),
                flush=True,
            )
        if server.name == "project":
            # Every list request since the first reading: the warm and cold scenarios',
            # and the mix's 40 %.
            lists = sum(results[name].requests for name in SCENARIOS if name.startswith("List"))
            lists += int(0.4 * results["Mixed 80/20"].requests)
            memory = memory_report(rss_start, worker_rss_mb(server), lists)
            print(f"  memory: {memory}", flush=True)
    except BenchError as error:
        raise BenchError(
            f"{error}\n--- {server.name} server log (tail) ---\n{server.log_tail()}"
        ) from None
    finally:
        server.stop()
    return results, memory


def bench(settings: Settings, argv: list[str], workdir: Path) -> str:
    admin_url = check_prerequisites(settings)
    started = time.monotonic()
    date = dt.datetime.now(dt.UTC)
    if settings.db == "postgresql":
        version = sql(admin_url, "SHOW server_version")
        print(f"PostgreSQL {version}: databases bench_project and bench_seed", flush=True)
        database = (
            f"PostgreSQL {version}, one throwaway cluster (scripts/with-postgres.sh: fsync, "
            "synchronous_commit and full_page_writes off), one database per server"
        )
    else:
        import sqlite3

        database = (
            f"SQLite {sqlite3.sqlite_version}, one file per server in a temporary directory "
            "(the project with its settings: WAL, synchronous=NORMAL; the seed with "
            "SQLAlchemy's defaults)"
        )
        print(f"SQLite {sqlite3.sqlite_version}: one file per server", flush=True)
    rows = make_rows(settings.rows)
    detail_id = settings.rows // 2
    project_env, seed_env = prepare(settings, admin_url, rows, workdir)
    servers = make_servers(project_env, seed_env, detail_id, workdir)
    results, memory = {}, ""
    for server in servers:
        results[server.name], found = measure(server, settings, rows, detail_id, workdir)
        memory = memory or found
    project, seed = servers
    facts = [
        ("Date", date.strftime("%Y-%m-%d %H:%M UTC")),
        (
            "Machine",
            f"{os.cpu_count()} CPUs ({cpu_model()}), {platform.system()} {platform.release()}; "
            "the servers, the database and wrk share it",
        ),
        ("Python", platform.python_version()),
        ("Database", database),
        (
            "wrk",
            f"`{settings.wrk_parameters}` after a {settings.warmup} warm-up, one scenario "
            "and one server at a time; every endpoint checked once before (status, shape, "
            "values, no redirect); any non-2xx or socket error fails the run",
        ),
        (
            "Requests",
            f"warm: `GET {project.list_path}` and `GET {project.detail_path}` (the seed: "
            f"`{seed.list_path}`, `{seed.detail_path}`); cold: each request another of "
            f"{max(1, min(PAGES, settings.rows // 100))} pages or another report, with a "
            "counter in the query string "
            "(`nocache=`); create: `POST /api/signalements/` of bench/create.lua's JSON; "
            "mixed: 40 % the list, 40 % a random report, 20 % creates; all anonymous",
        ),
        (
            "Rows",
            f"{settings.rows:,} reports in each database, the same descriptions and dates "
            "(the project's other columns at their defaults)",
        ),
        (
            "Project",
            f"application code at {revision()}; `scripts/serve.sh` as `make serve` runs it "
            f"(granian, {WORKERS} workers, DEBUG off, throttles off, no access log); "
            + versions(sys.executable, ["Django", "djangorestframework", "granian", "psycopg"]),
        ),
        (
            "Seed",
            f"bench/seed (unmodified), uvicorn `app.main:app`, {WORKERS} workers, no access "
            "log; "
            + versions(SEED_PYTHON, ["fastapi", "uvicorn", "pydantic", "SQLAlchemy", "psycopg"]),
        ),
    ]
    if memory:
        facts.append(("Project workers' memory (RSS, after the warm-ups → at the end)", memory))
    facts.append(
        (
            "Command",
            f"`{command_line(argv)}`, {time.monotonic() - started:.0f} s from the databases' "
            "creation to this report",
        )
    )
    return render(results, facts, settings.db)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    settings = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_system_exit)
    workdir = Path(tempfile.mkdtemp(prefix="signalements-bench."))
    try:
        section = bench(settings, argv, workdir)
    except BenchError as error:
        print(f"\nmake bench failed: {error}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    existing = settings.output.read_text(encoding="utf-8") if settings.output.exists() else ""
    settings.output.write_text(merge_results(existing, section, settings.db), encoding="utf-8")
    print(f"\n{section}\nWritten to {os.path.relpath(settings.output, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
