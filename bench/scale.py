"""`make bench-scale`: the report list, detail and statistics at 10,000 and at 1,000,000
reports, one request at a time, and the bulk import's rate and memory, on PostgreSQL and
SQLite (issue "A million reports").

    scripts/with-postgres.sh .venv/bin/python bench/scale.py [--rows 1000000]
        [--db both|postgresql|sqlite] [--requests 200] [--warmup 20] [--budget 30]
        [--import-rows 100000,1000000] [--csv-rows 200000] [--output bench/results-scale.md]
        [--readme README.md | --no-readme] [--no-explain]

For each database (PostgreSQL in the cluster of scripts/with-postgres.sh, then SQLite in
a file of a temporary directory):

1. migrate, then the small fixture through the ORM and the reports in bulk SQL
   (bench/scale_data.py: ten years, eight categories, every status, photos on 5 %);
2. at 10,000 reports (a tenth of --rows when that is fewer), then once the same database
   has grown to --rows: the project served as `make serve` serves it (scripts/serve.sh,
   granian, one worker, DEBUG off, throttles off), with the response cache off and the
   anonymous statistics not cached (RESPONSE_CACHE=0, STATS_CACHE_SECONDS=0): each
   request below (TARGETS) --warmup times, then --requests times (or for --budget
   seconds, whichever ends first), one client on one keep-alive connection; every answer
   must be a 200 of the expected shape: a wrong one ends that request's measure, is
   shown in the table, and the run exits 1;
3. on PostgreSQL, the requests that miss their target at --rows are asked again with
   every statement's duration logged, and auto_explain's plans (EXPLAIN ANALYZE's
   figures) of those over 3 ms: how much of the request is SQL, and where it goes;
4. `manage.py import_signalements` of JSON-lines files of --import-rows reports and of
   a CSV of --csv-rows, each into a fresh database: rows per second and the command's
   peak memory (the largest and the smallest file's, to compare);
5. a Markdown table per database, printed and written into its section of --output (the
   other database's section is kept), and the sections' summaries into the README between
   `<!-- bench-scale:start -->` and `<!-- bench-scale:end -->`.

Knobs from the environment too: BENCH_SCALE_ROWS, BENCH_SCALE_DB, BENCH_SCALE_REQUESTS,
BENCH_SCALE_BUDGET, BENCH_SCALE_IMPORT_ROWS, BENCH_SCALE_CSV_ROWS.
"""

import argparse
import datetime as dt
import http.client
import json
import os
import platform
import random
import re
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import run as base  # noqa: E402  (bench/run.py: `make bench`'s helpers)
from run import BenchError  # noqa: E402

SMALL = 10_000
PAGE_SIZE = 20  # the API's default page
DEEP_PAGES = 10_000
PAGE_NUMBER = 500
NEAR_RADIUS_M = 500
WORKERS = 1
DATA = BENCH / "scale_data.py"
IMPORT_COMMAND = ROOT / "signalements" / "management" / "commands" / "import_signalements.py"
IMPORT_BATCH = 20_000  # the command's default
# PostgreSQL's plans of the statements slower than this, for the requests that miss.
EXPLAIN_MIN_MS = 3
EXPLAIN_REQUESTS = 3
EXPLAIN_PLANS_MAX = 3  # per missed request
EXPLAIN_PLAN_LINES = 40
EXPLAIN_QUERY_CHARS = 600
README_START = "<!-- bench-scale:start -->"
README_END = "<!-- bench-scale:end -->"
DETAILS = "<!-- details -->"
TITLES = {"postgresql": "PostgreSQL", "sqlite": "SQLite"}
# The import targets (rows per second) and the memory's (largest ÷ smallest file).
IMPORT_RATES = {"postgresql": 50_000, "sqlite": 20_000}
RSS_TOLERANCE = 0.20


# --- The requests ---------------------------------------------------------------------


@dataclass
class Data:
    """What the requests are made of, at one size: the fixture (bench/scale_data.py
    setup) and the probe of the data (bench/scale_data.py probe)."""

    fixture: dict
    probe: dict

    @property
    def last_page(self) -> int:
        return max(1, -(-self.probe["public"] // PAGE_SIZE))


@dataclass
class Target:
    """A measured request: its paths (a few variants, so that no cache of a process
    answers the same question twice in a row), whether it is the agent's, the shape of
    its answer, and its limit (p99, ms) by database; `ratio`: on PostgreSQL, its p50 also
    at most this many times the same request's at 10,000 reports."""

    name: str
    paths: Callable[[Data, random.Random], list[str]]
    shape: str
    limits: dict[str, float] = field(default_factory=dict)
    ratio: float | None = None
    agent: bool = False
    note: Callable[[Data], str] | None = None

    def goal(self, db: str) -> str:
        if db not in self.limits:
            return "information"
        goal = f"p99 < {self.limits[db]:g} ms"
        return f"{goal}, p50 ≤ {self.ratio:g}× 10k's" if self.judges_ratio(db) else goal

    def judges_ratio(self, db: str) -> bool:
        return self.ratio is not None and db == "postgresql"


def _query(path: str, **parameters) -> str:
    return f"{path}?{urllib.parse.urlencode(parameters)}" if parameters else path


LIST = "/api/signalements/"
STATS = "/api/signalements/stats/"
LIST_LIMITS = {"postgresql": 20.0, "sqlite": 50.0}
STATS_LIMITS = {"postgresql": 50.0, "sqlite": 50.0}


def _filtered(data: Data, rng: random.Random) -> list[str]:
    return [
        _query(
            LIST,
            status="new",
            category=category,
            in_bbox=",".join(f"{value:.4f}" for value in bbox),
        )
        for category in data.fixture["categories"]
        for bbox in data.fixture["districts"].values()
    ]


def _near(data: Data, rng: random.Random) -> list[str]:
    paths = []
    for west, south, east, north in data.fixture["districts"].values():
        for _ in range(4):
            latitude = (south + north) / 2 + rng.uniform(-0.003, 0.003)
            longitude = (west + east) / 2 + rng.uniform(-0.003, 0.003)
            paths.append(_query(LIST, near=f"{latitude:.5f},{longitude:.5f}", radius=NEAR_RADIUS_M))
    return paths


def _stats_filtered(data: Data, rng: random.Random) -> list[str]:
    return [
        _query(STATS, category=category, created_after=start, created_before=end)
        for category in data.fixture["categories"]
        for start, end in data.probe["months"][:6]
    ]


def _deep_note(data: Data) -> str:
    return f"{data.probe['deep_offset'] // PAGE_SIZE:,} pages deep"


TARGETS = [
    Target("First page", lambda data, rng: [LIST], "page", LIST_LIMITS, 1.5),
    Target("First page, agent", lambda data, rng: [LIST], "page", LIST_LIMITS, 1.5, agent=True),
    Target(
        f"Page {DEEP_PAGES:,} deep (`?cursor=`)",
        lambda data, rng: [_query(LIST, cursor=cursor) for cursor in data.probe["cursors"]],
        "cursor",
        LIST_LIMITS,
        1.5,
        note=_deep_note,
    ),
    Target(
        f"Page {PAGE_NUMBER} (`?page=`)",
        lambda data, rng: [
            _query(LIST, page=max(1, min(PAGE_NUMBER, data.last_page) - shift))
            for shift in range(5)
        ],
        "page",
        note=lambda data: f"page {min(PAGE_NUMBER, data.last_page)}",
    ),
    Target(
        "Filtered: status, category, district",
        _filtered,
        "page",
        LIST_LIMITS,
        1.5,
    ),
    Target(f"Near, {NEAR_RADIUS_M} m", _near, "page", LIST_LIMITS, 1.5),
    Target(
        "Detail",
        lambda data, rng: [f"{LIST}{pk}/" for pk in data.probe["ids"]],
        "detail",
        LIST_LIMITS,
        1.5,
    ),
    Target("Stats, all", lambda data, rng: [STATS], "stats", STATS_LIMITS, agent=True),
    Target("Stats, category and month", _stats_filtered, "stats", STATS_LIMITS, agent=True),
]


def check_answer(shape: str, path: str, status: int, body: bytes) -> str | None:
    """Why the answer is not what the request expects, or None."""
    if status != 200:
        return f"status {status}: {body[:300]!r}"
    try:
        payload = json.loads(body)
    except ValueError:
        return f"not JSON: {body[:300]!r}"
    if shape in ("page", "cursor"):
        keys = {"next", "previous", "results"} | ({"count"} if shape == "page" else set())
        if not isinstance(payload, dict) or not keys <= payload.keys():
            return f"not a page {sorted(keys)}: {body[:300]!r}"
        if shape == "page" and not isinstance(payload["count"], int):
            return f"count: not a number: {body[:300]!r}"
        results = payload["results"]
        if not isinstance(results, list) or len(results) > PAGE_SIZE:
            return f"results: not a list of at most {PAGE_SIZE}: {body[:300]!r}"
        if shape == "cursor" and len(results) != PAGE_SIZE:
            return f"a deep page of {len(results)} reports, not {PAGE_SIZE}"
        if not all(
            isinstance(item, dict) and {"id", "description"} <= item.keys() for item in results
        ):
            return f"reports without id or description: {body[:300]!r}"
    elif shape == "detail":
        expected = int(path.rstrip("/").rsplit("/", 1)[1])
        if not isinstance(payload, dict) or payload.get("id") != expected:
            return f"not report {expected}: {body[:300]!r}"
    elif shape == "stats":
        if not (
            isinstance(payload, dict)
            and isinstance(payload.get("total"), int)
            and isinstance(payload.get("by_status"), list)
        ):
            return f"not statistics: {body[:300]!r}"
    return None


# --- Measuring ------------------------------------------------------------------------


class Client:
    """One keep-alive connection, as a single client keeps it."""

    def __init__(self, port: int):
        self.port = port
        self.connection: http.client.HTTPConnection | None = None

    def get(self, path: str, headers: dict) -> tuple[int, bytes, float]:
        """(status, body, seconds from sending to the last byte)."""
        for attempt in (1, 2):
            if self.connection is None:
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
                self.connection.connect()
            try:
                started = time.perf_counter()
                self.connection.request("GET", path, headers=headers)
                response = self.connection.getresponse()
                body = response.read()
                elapsed = time.perf_counter() - started
            except (http.client.HTTPException, ConnectionError):
                self.close()
                if attempt == 2:
                    raise
                continue
            if response.will_close:
                self.close()
            return response.status, body, elapsed
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


@dataclass
class Sample:
    latencies_ms: list[float]
    note: str = ""
    error: str = ""  # the first wrong answer, which ended the request's measure
    slowest: tuple[float, str] = (0.0, "")  # (ms, path)

    def percentile(self, percent: float) -> float:
        """Nearest rank."""
        ordered = sorted(self.latencies_ms)
        rank = max(1, -(-len(ordered) * percent // 100))
        return ordered[int(rank) - 1]

    @property
    def p50(self) -> float:
        return self.percentile(50)

    @property
    def p99(self) -> float:
        return self.percentile(99)

    @property
    def max(self) -> float:
        return max(self.latencies_ms)


@dataclass
class Settings:
    rows: int
    db: str
    requests: int
    warmup: int
    budget: float
    import_rows: list[int]
    csv_rows: int
    output: Path
    readme: Path | None
    explain: bool

    @property
    def small(self) -> int:
        return min(SMALL, max(1, self.rows // 10))

    @property
    def databases(self) -> list[str]:
        return ["postgresql", "sqlite"] if self.db == "both" else [self.db]


def measure(client: Client, target: Target, data: Data, settings: Settings, token: str) -> Sample:
    rng = random.Random(target.name)
    paths = target.paths(data, rng)
    if not paths:
        raise BenchError(f"{target.name}: no request to make (the data has none)")
    rng.shuffle(paths)
    headers = {"Accept": "application/json"}
    if target.agent:
        headers["Authorization"] = f"Token {token}"
    latencies = []
    slowest = (0.0, "")
    deadline = None
    for number in range(settings.warmup + settings.requests):
        path = paths[number % len(paths)]
        status, body, seconds = client.get(path, headers)
        problem = check_answer(target.shape, path, status, body)
        if problem:
            return Sample(latencies, error=f"GET {path}: {problem}")
        if number == settings.warmup:
            deadline = time.monotonic() + settings.budget
        if number >= settings.warmup:
            latencies.append(seconds * 1000)
            slowest = max(slowest, (seconds * 1000, path))
            if time.monotonic() > deadline:
                break
    return Sample(latencies, target.note(data) if target.note else "", slowest=slowest)


# --- The databases and the project ------------------------------------------------------


@dataclass
class Database:
    db: str
    url: str  # the project's DATABASE_URL
    admin_url: str  # PostgreSQL: the cluster's
    workdir: Path
    env: dict = field(default_factory=dict)

    @property
    def media(self) -> Path:
        return self.workdir / "media"


def project_env(url: str, workdir: Path) -> dict:
    """Production settings as `make serve` has them, less the rate limits and the caches
    that would answer the repeated requests instead of the database."""
    return {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        # Plain HTTP on loopback, no proxy: not redirected to HTTPS (on by default).
        "SECURE_SSL_REDIRECT": "0",
        "DATABASE_URL": url,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "THROTTLE_ANON_CREATE": "",
        "THROTTLE_ANON_EXPENSIVE_READ": "",
        "THROTTLE_USER_WRITE": "",
        "THROTTLE_LOGIN": "",
        "RESPONSE_CACHE": "0",
        "STATS_CACHE_SECONDS": "0",
        "LOG_LEVEL": "WARNING",
        "WEB_CONCURRENCY": str(WORKERS),
        "TASK_WORKERS": "0",
        "ACCESS_LOG": "0",
        "MEDIA_ROOT": str(workdir / "media"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def django(database: Database, description: str, *args: str) -> str:
    return base.run_step(description, [sys.executable, *args], cwd=ROOT, env=database.env)


def data_step(database: Database, description: str, *args: str) -> dict:
    output = django(database, description, str(DATA), *args)
    return json.loads(output.strip().splitlines()[-1])


def create_database(db: str, admin_url: str, name: str, workdir: Path) -> Database:
    """An empty database, not migrated yet (PostgreSQL: `name` in the cluster, dropped
    first; SQLite: a file in `workdir`)."""
    if db == "postgresql":
        base.sql(admin_url, f"DROP DATABASE IF EXISTS {name}")
        base.sql(admin_url, f"CREATE DATABASE {name}")
        url = base.with_database(admin_url, name)
    else:
        path = workdir / f"{name}.sqlite3"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        url = f"sqlite:///{path}"
    database = Database(db, url, admin_url, workdir)
    database.env = project_env(url, workdir)
    return database


def project_server(database: Database, name: str) -> base.Server:
    port = base.free_port()
    return base.Server(
        name=name,
        command=[str(ROOT / "scripts" / "serve.sh")],
        cwd=ROOT,
        env={**database.env, "HOST": "127.0.0.1", "PORT": str(port)},
        list_path=f"{LIST}?page_size=1",
        detail_path="",
        create_path="",
        paginated=True,
        log=database.workdir / f"{name}.log",
        port=port,
    )


def measure_all(
    database: Database, data: Data, settings: Settings, label: str
) -> dict[str, Sample]:
    server = project_server(database, f"{database.db}-{label}")
    results = {}
    try:
        server.start()
        server.wait_until_ready()
        client = Client(server.port)
        for target in TARGETS:
            sample = results[target.name] = measure(
                client, target, data, settings, data.fixture["token"]
            )
            if sample.error:
                print(f"    {target.name:<40} FAILED: {sample.error[:300]}", flush=True)
                print(server.log_tail(15), flush=True)
                continue
            print(
                f"    {target.name:<40} p50 {sample.p50:8.1f} ms   p99 {sample.p99:8.1f} ms   "
                f"max {sample.max:8.1f} ms   ({len(sample.latencies_ms)} requests)",
                flush=True,
            )
        client.close()
    except BenchError as error:
        raise BenchError(f"{error}\n--- server log (tail) ---\n{server.log_tail()}") from None
    finally:
        server.stop()
    return results


# --- auto_explain ---------------------------------------------------------------------


def server_log(admin_url: str) -> Path | None:
    """The cluster's log, as scripts/with-postgres.sh writes it (beside its data
    directory), or None when it cannot be read."""
    try:
        data_directory = Path(base.sql(admin_url, "SHOW data_directory"))
    except BenchError:
        return None
    log = data_directory.parent / "server.log"
    return log if os.access(log, os.R_OK) else None


@dataclass
class Diagnosis:
    """What PostgreSQL did for a request that missed its target: per request, the
    statements' number and time (their sum, as the server logged them), and the plans
    of the slowest."""

    requests: int
    statements: int
    sql_ms: float
    plans: list[str]

    def summary(self, p50: float) -> str:
        return (
            f"{self.statements / self.requests:.0f} statements taking {self.sql_ms / self.requests:.1f} ms "
            f"of the request's p50 {_ms(p50)} ms"
        )


def explain_misses(
    database: Database, data: Data, results: dict[str, dict[str, Sample]]
) -> dict[str, Diagnosis]:
    """The requests that missed their target, asked again (EXPLAIN_REQUESTS each) with every
    statement's duration logged and auto_explain logging the plans (with EXPLAIN
    ANALYZE's figures, whose instrumentation slows them a little) of those over
    EXPLAIN_MIN_MS."""
    missed = [
        target
        for target in TARGETS
        if not results["large"][target.name].error
        and judge(
            target, database.db, results["small"][target.name], results["large"][target.name]
        )[0]
        is False
    ]
    log = server_log(database.admin_url)
    if not missed or log is None:
        return {}
    name = urllib.parse.urlsplit(database.url).path.lstrip("/")
    settings_sql = {
        "log_min_duration_statement": "0",
        "session_preload_libraries": "'auto_explain'",
        "auto_explain.log_min_duration": f"'{EXPLAIN_MIN_MS}ms'",
        "auto_explain.log_analyze": "on",
        "auto_explain.log_buffers": "on",
        "auto_explain.log_nested_statements": "on",
    }
    for setting, value in settings_sql.items():
        base.sql(database.admin_url, f"ALTER DATABASE {name} SET {setting} = {value}")
    found = {}
    server = project_server(database, f"{database.db}-explain")
    try:
        server.start()
        server.wait_until_ready()
        client = Client(server.port)
        client.get(LIST, {"Accept": "application/json"})  # the connection's first statements
        for target in missed:
            headers = {"Accept": "application/json"}
            if target.agent:
                headers["Authorization"] = f"Token {data.fixture['token']}"
            start = log.stat().st_size
            paths = target.paths(data, random.Random(target.name))[:EXPLAIN_REQUESTS]
            for path in paths:
                client.get(path, headers)
            time.sleep(0.5)  # the server's processes write the log
            with log.open(encoding="utf-8", errors="replace") as stream:
                stream.seek(start)
                text = stream.read()
            statements, sql_ms = logged_statements(text)
            found[target.name] = Diagnosis(len(paths), statements, sql_ms, slowest_plans(text))
        client.close()
    finally:
        server.stop()
        for setting in settings_sql:
            base.sql(database.admin_url, f"ALTER DATABASE {name} RESET {setting}")
    return found


def logged_statements(log_text: str) -> tuple[int, float]:
    """(statements, their milliseconds) in a stretch of the server's log written with
    log_min_duration_statement = 0 (a statement's parse and bind steps count in its
    time)."""
    statements, total = 0, 0.0
    for match in re.finditer(
        r"LOG:  duration: ([\d.]+) ms  (statement|execute|parse|bind)\b", log_text
    ):
        total += float(match[1])
        statements += match[2] in ("statement", "execute")
    return statements, total


def slowest_plans(log_text: str) -> list[str]:
    """auto_explain's plans in a stretch of the server's log, slowest first, one per
    statement, each as its duration, its SQL on one line (cut) and its plan (cut to
    EXPLAIN_PLAN_LINES lines)."""
    found = {}
    for match in re.finditer(
        r"LOG:  duration: ([\d.]+) ms  plan:\n(.*?)(?=\n\S|\Z)", log_text, re.S
    ):
        duration = float(match[1])
        lines = [line.removeprefix("\t") for line in match[2].splitlines()]
        # The plan starts at its top node, the first line not indented with a cost.
        top = next(
            (i for i, line in enumerate(lines) if re.match(r"\S.*\(cost=", line)), len(lines)
        )
        query = " ".join(" ".join(lines[:top]).removeprefix("Query Text:").split())
        if duration > found.get(query, (0.0, []))[0]:
            found[query] = (duration, lines[top:])
    ordered = sorted(found.items(), key=lambda item: -item[1][0])[:EXPLAIN_PLANS_MAX]
    return [
        f"{duration:.1f} ms: {query[:EXPLAIN_QUERY_CHARS]}{'…' if len(query) > EXPLAIN_QUERY_CHARS else ''}\n"
        + "\n".join(plan[:EXPLAIN_PLAN_LINES])
        + ("\n…" if len(plan) > EXPLAIN_PLAN_LINES else "")
        for query, (duration, plan) in ordered
    ]


def costliest_node(plan: str) -> str:
    """The plan's node that spent the most time of its own (its actual total time, less
    its children's), with that time: where a slow statement spends it."""
    nodes = []  # [indent, label, total ms, children's ms]
    stack = []
    for line in plan.splitlines():
        match = re.match(
            r"^(\s*(?:->\s+)?)(\S[^(]*?)\s+\(cost=[^)]*\) "
            r"\(actual time=[\d.]+\.\.([\d.]+) rows=\d+ loops=(\d+)\)",
            line,
        )
        if not match:
            continue
        node = [len(match[1]), match[2], float(match[3]) * int(match[4]), 0.0]
        while stack and stack[-1][0] >= node[0]:
            stack.pop()
        if stack:
            stack[-1][3] += node[2]
        stack.append(node)
        nodes.append(node)
    if not nodes:
        return ""
    _, label, total, children = max(nodes, key=lambda node: node[2] - node[3])
    return f"{label} ({total - children:.0f} ms of its own)"


# --- Import ---------------------------------------------------------------------------


@dataclass
class Import:
    label: str
    rows: int
    seconds: float | None = None
    peak_rss_mb: float | None = None
    summary: str = ""
    problem: str = ""
    startup: float = 0.0  # the command's time with an empty file, taken off for the rate

    @property
    def rate(self) -> float | None:
        return self.rows / max(self.seconds - self.startup, 1e-3) if self.seconds else None


# Runs a command and writes its peak resident memory (ru_maxrss, KiB on Linux) to a file:
# a process of its own, so that no other child of the bench counts.
PEAK_RSS = (
    "import resource, subprocess, sys\n"
    "code = subprocess.call(sys.argv[2:])\n"
    "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
    "sys.exit(code)\n"
)


def import_files(settings: Settings, workdir: Path) -> list[tuple[str, Path, int]]:
    files = []
    for rows in settings.import_rows:
        files.append((f"JSON lines, {rows:,} rows", workdir / f"import-{rows}.jsonl", rows))
    if settings.csv_rows:
        rows = settings.csv_rows
        files.append((f"CSV, {rows:,} rows", workdir / f"import-{rows}.csv", rows))
    for _, path, rows in files:
        if not path.exists():
            print(f"  writing {path.name}", flush=True)
            file_format = "csv" if path.suffix == ".csv" else "jsonl"
            subprocess.run(
                [
                    sys.executable,
                    str(DATA),
                    "import-file",
                    str(path),
                    "--rows",
                    str(rows),
                    "--format",
                    file_format,
                ],
                check=True,
                capture_output=True,
            )
    return files


def run_imports(db: str, admin_url: str, settings: Settings, workdir: Path) -> list[Import]:
    """Each file (written once for both databases, in workdir's parent) into a fresh
    database holding the fixture (its categories)."""
    files = import_files(settings, workdir.parent)
    if not IMPORT_COMMAND.exists():
        return [
            Import(label, rows, problem="pending: no import_signalements command yet")
            for label, _, rows in files
        ]
    template = create_database(db, admin_url, "bench_scale_import_template", workdir)
    django(template, "import: migrate", "manage.py", "migrate", "--noinput", "-v0")
    data_step(template, "import: fixture", "setup", "--media", str(template.media))
    results = []
    try:
        # The command's own start-up (Python, Django, the checks): an empty file.
        empty = workdir / "empty.jsonl"
        empty.touch()
        startup = (
            import_one(fresh_copy(template, "bench_scale_import"), "empty", empty, 0).seconds or 0.0
        )
        for label, path, rows in files:
            target = fresh_copy(template, "bench_scale_import")
            results.append(import_one(target, label, path, rows, startup))
    finally:
        if db == "postgresql":
            base.sql(admin_url, "DROP DATABASE IF EXISTS bench_scale_import")
            base.sql(admin_url, "DROP DATABASE IF EXISTS bench_scale_import_template")
    return results


def fresh_copy(template: Database, name: str) -> Database:
    """A copy of the template database (PostgreSQL: CREATE DATABASE … TEMPLATE; SQLite:
    the file, through SQLite's backup)."""
    if template.db == "postgresql":
        base.sql(template.admin_url, f"DROP DATABASE IF EXISTS {name}")
        template_name = urllib.parse.urlsplit(template.url).path.lstrip("/")
        base.sql(template.admin_url, f"CREATE DATABASE {name} TEMPLATE {template_name}")
        copy = Database(
            template.db,
            base.with_database(template.admin_url, name),
            template.admin_url,
            template.workdir,
        )
    else:
        copy = create_database(template.db, "", name, template.workdir)
        copy_sqlite(template.url, copy.url)
    copy.env = {**template.env, "DATABASE_URL": copy.url}
    return copy


def copy_sqlite(source_url: str, target_url: str) -> None:
    source = sqlite3.connect(source_url.removeprefix("sqlite:///"))
    target = sqlite3.connect(target_url.removeprefix("sqlite:///"))
    with target:
        source.backup(target)
    source.close()
    target.close()


def import_one(
    database: Database, label: str, path: Path, rows: int, startup: float = 0.0
) -> Import:
    peak_file = database.workdir / "peak-rss"
    log = database.workdir / "import.log"
    command = [
        sys.executable,
        "-c",
        PEAK_RSS,
        str(peak_file),
        sys.executable,
        "manage.py",
        "import_signalements",
        str(path),
        "--batch-size",
        str(IMPORT_BATCH),
    ]
    print(f"  {TITLES[database.db]}: import {label}", flush=True)
    started = time.monotonic()
    with log.open("w") as output:
        completed = subprocess.run(
            command,
            cwd=ROOT,
            env=database.env,
            stdout=output,
            stderr=subprocess.STDOUT,
            check=False,
        )
    seconds = time.monotonic() - started
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines()]
    lines = [line for line in lines if line.strip("^~ ")]
    # The summary, or the error a traceback ends with.
    last = lines[-1].replace("|", "\\|") if lines else ""
    if completed.returncode != 0:
        return Import(label, rows, problem=f"exit {completed.returncode}: {last[:200]}")
    found = count_reports(database)
    if found != rows:
        return Import(
            label,
            rows,
            seconds,
            summary=last,
            problem=f"{found:,} reports in the database, not {rows:,}",
        )
    peak = int(peak_file.read_text()) / 1024
    result = Import(label, rows, seconds, peak, summary=last, startup=startup)
    print(
        f"    {seconds:.1f} s, peak RSS {peak:.0f} MB   ({last[:120]})",
        flush=True,
    )
    return result


def count_reports(database: Database) -> int:
    if database.db == "postgresql":
        return int(base.sql(database.url, "SELECT COUNT(*) FROM signalements_signalement"))
    connection = sqlite3.connect(database.url.removeprefix("sqlite:///"))
    try:
        return connection.execute("SELECT COUNT(*) FROM signalements_signalement").fetchone()[0]
    finally:
        connection.close()


# --- One database ---------------------------------------------------------------------


@dataclass
class Outcome:
    db: str
    version: str
    small: int
    large: int
    results: dict[str, dict[str, Sample]]  # "small"/"large" -> target -> sample
    generation: dict[str, dict]
    diagnoses: dict[str, Diagnosis]
    imports: list[Import]
    seconds: float

    @property
    def failed(self) -> bool:
        """A wrong answer to a request, or an import that failed (one that is not there
        yet is pending, not failed)."""
        samples = [sample for size in self.results.values() for sample in size.values()]
        return any(sample.error for sample in samples) or any(
            item.problem and not item.problem.startswith("pending") for item in self.imports
        )


def bench_database(db: str, settings: Settings, admin_url: str, workdir: Path) -> Outcome:
    started = time.monotonic()
    if db == "postgresql":
        version = "PostgreSQL " + base.sql(admin_url, "SHOW server_version").split()[0]
    else:
        version = f"SQLite {sqlite3.sqlite_version}"
    print(f"{version}:", flush=True)
    workdir.mkdir(parents=True, exist_ok=True)
    database = create_database(db, admin_url, "bench_scale", workdir)
    django(database, "migrate", "manage.py", "migrate", "--noinput", "-v0")
    fixture = data_step(database, "fixture (ORM)", "setup", "--media", str(database.media))
    results, generation = {}, {}
    for label, size in (("small", settings.small), ("large", settings.rows)):
        generation[label] = data_step(
            database, f"{size:,} reports (SQL)", "grow", "--to", str(size)
        )
        print(f"    {generation[label]}", flush=True)
        probe = data_step(
            database,
            "probe",
            "probe",
            "--deep-page",
            str(DEEP_PAGES),
            "--page-size",
            str(PAGE_SIZE),
        )
        data = Data(fixture, probe)
        print(f"  measuring at {size:,} reports", flush=True)
        results[label] = measure_all(database, data, settings, label)
    diagnoses = {}
    if db == "postgresql" and settings.explain:
        diagnoses = explain_misses(database, data, results)
    # Its room, for the imports.
    if db == "postgresql":
        base.sql(admin_url, "DROP DATABASE IF EXISTS bench_scale")
    else:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{database.url.removeprefix('sqlite:///')}{suffix}").unlink(missing_ok=True)
    imports = run_imports(db, admin_url, settings, workdir)
    return Outcome(
        db,
        version,
        settings.small,
        settings.rows,
        results,
        generation,
        diagnoses,
        imports,
        time.monotonic() - started,
    )


# --- Report ---------------------------------------------------------------------------


def _ms(value: float) -> str:
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def judge(target: Target, db: str, small: Sample, large: Sample) -> tuple[bool | None, str]:
    """(met, why not) of a target at the large size; met None: information only."""
    if small.error or large.error:
        return False, f"wrong answer: {(large.error or small.error)[:200]}"
    if db not in target.limits:
        return None, ""
    reasons = []
    if large.p99 >= target.limits[db]:
        reasons.append(f"p99 {_ms(large.p99)} ms ≥ {target.limits[db]:g} ms")
    # The growth on the p50: the p99 of a few milliseconds moves by half from one run to
    # the next on a shared machine, the p50 by a few per cent.
    ratio = large.p50 / small.p50
    if target.judges_ratio(db) and ratio > target.ratio:
        reasons.append(f"p50 {ratio:.2f}× the p50 at 10k")
    return not reasons, "; ".join(reasons)


def figures(sample: Sample) -> str:
    if sample.error:
        return "error"
    return f"{_ms(sample.p50)} / {_ms(sample.p99)}"


def render_requests(outcome: Outcome) -> list[str]:
    small_label, large_label = f"{outcome.small:,}", f"{outcome.large:,}"
    lines = [
        f"| Request | {small_label}: p50 / p99 ms | {large_label}: p50 / p99 ms | max ms | "
        f"{large_label} ÷ {small_label} (p50 / p99) | Target | Met? |",
        "|---|--:|--:|--:|--:|---|---|",
    ]
    for target in TARGETS:
        small, large = outcome.results["small"][target.name], outcome.results["large"][target.name]
        met, _ = judge(target, outcome.db, small, large)
        goal = target.goal(outcome.db)
        if small.error or large.error:
            lines.append(
                f"| {target.name} | {figures(small)} | {figures(large)} | | | {goal} | **error** |"
            )
            continue
        name = target.name
        if large.note and large.note != small.note:
            name += f" ({large.note}; at {small_label}: {small.note})"
        elif large.note and large.note not in name:
            name += f" ({large.note})"
        lines.append(
            f"| {name} | {figures(small)} | {figures(large)} | "
            f"{_ms(large.max)} | {large.p50 / small.p50:.2f}× / {large.p99 / small.p99:.2f}× | {goal} | "
            f"{'—' if met is None else 'yes' if met else '**no**'} |"
        )
    return lines


def render_imports(outcome: Outcome) -> list[str]:
    target = IMPORT_RATES[outcome.db]
    lines = [
        f"| Import (`import_signalements --batch-size {IMPORT_BATCH}`) | Seconds "
        "| Rows/s (less start-up) "
        "| Peak RSS MB | Target | Met? |",
        "|---|--:|--:|--:|---|---|",
    ]
    for result in outcome.imports:
        if result.problem and result.seconds is None:
            lines.append(f"| {result.label} | — | — | — | ≥ {target:,} rows/s | {result.problem} |")
            continue
        met = "**no**" if result.problem or result.rate < target else "yes"
        lines.append(
            f"| {result.label} | {result.seconds:.1f} | {result.rate:,.0f} | "
            f"{result.peak_rss_mb or 0:.0f} | ≥ {target:,} rows/s | {met} |"
        )
    memory = memory_verdict(outcome.imports)
    if memory:
        lines.append(
            f"| Memory, {memory[0]} | | | | RSS within ±{RSS_TOLERANCE:.0%} | {memory[1]} |"
        )
    measured = [result for result in outcome.imports if result.seconds is not None]
    if measured:
        lines += [
            "",
            f"Rows/s leave out the command's start-up: {measured[0].startup:.1f} s with an empty "
            "file.",
        ]
    return lines


def memory_verdict(imports: list[Import]) -> tuple[str, str] | None:
    """(what was compared, met) for the smallest and the largest JSON-lines imports."""
    measured = [item for item in imports if item.peak_rss_mb and item.label.startswith("JSON")]
    if len(measured) < 2:
        return None
    small, large = (
        min(measured, key=lambda item: item.rows),
        max(measured, key=lambda item: item.rows),
    )
    change = large.peak_rss_mb / small.peak_rss_mb - 1
    met = "yes" if abs(change) <= RSS_TOLERANCE else "**no**"
    return (
        f"{small.rows:,} → {large.rows:,} rows: {small.peak_rss_mb:.0f} → {large.peak_rss_mb:.0f} MB ({change:+.0%})",
        met,
    )


def diagnosis_text(outcome: Outcome, name: str) -> str:
    """What PostgreSQL's log says of a missed request: its statements' time, and where
    its slowest statement spends it."""
    diagnosis = outcome.diagnoses.get(name)
    if diagnosis is None:
        return ""
    text = f"; {diagnosis.summary(outcome.results['large'][name].p50)}"
    if diagnosis.plans:
        slowest = diagnosis.plans[0].split(" ms", 1)[0]
        node = costliest_node(diagnosis.plans[0])
        text += f", the slowest {slowest} ms" + (f", mostly in {node}" if node else "")
    return text


def unmet(outcome: Outcome) -> list[str]:
    """A line per target not met, with why (and at 1M on PostgreSQL, the costliest node
    of the slowest plan auto_explain caught)."""
    lines = []
    for target in TARGETS:
        small, large = outcome.results["small"][target.name], outcome.results["large"][target.name]
        met, why = judge(target, outcome.db, small, large)
        if met is False:
            lines.append(f"- {target.name}: {why}{diagnosis_text(outcome, target.name)}.")
    lines += [
        f"- Import, {item.label}: {item.problem}." for item in outcome.imports if item.problem
    ]
    slow = [
        item.rate
        for item in outcome.imports
        if not item.problem and item.rate < IMPORT_RATES[outcome.db]
    ]
    if slow:
        rates = f"{min(slow):,.0f}" + (f" to {max(slow):,.0f}" if len(slow) > 1 else "")
        lines.append(f"- Import: {rates} rows/s < {IMPORT_RATES[outcome.db]:,}.")
    memory = memory_verdict(outcome.imports)
    if memory and memory[1] != "yes":
        lines.append(f"- Import memory: {memory[0]}.")
    return lines


def render(outcome: Outcome, facts: list[tuple[str, str]]) -> str:
    """The database's section of --output: a summary (also the README's), then the
    details."""
    misses = unmet(outcome)
    lines = [
        f"## {TITLES[outcome.db]}",
        "",
        *render_requests(outcome),
        "",
        *render_imports(outcome),
        "",
        "Not met:" if misses else "Every target met.",
        *misses,
        "",
        f"- Run: {facts[0][1]}",
        "",
        DETAILS,
        "",
        *(f"- {label}: {value}" for label, value in facts[1:]),
    ]
    outliers = [
        (name, sample.slowest)
        for name, sample in outcome.results["large"].items()
        if not sample.error and sample.p99 > 2 * sample.p50
    ]
    if outliers:
        lines += ["", f"Slowest requests at {outcome.large:,} (where p99 > 2 × p50):", ""]
        lines += [f"- {name}: {ms:,.1f} ms, `GET {path}`" for name, (ms, path) in outliers]
    if outcome.diagnoses:
        lines += [
            "",
            f"### The missed requests' statements at {outcome.large:,} reports",
            "",
            f"Each asked {EXPLAIN_REQUESTS} times again with `log_min_duration_statement = 0` "
            f"and auto_explain (`log_analyze`, `log_buffers`) for the statements over "
            f"{EXPLAIN_MIN_MS} ms; their slowest plans (instrumented: a little slower):",
            "",
        ]
        for name, diagnosis in outcome.diagnoses.items():
            lines += [f"**{name}**: {diagnosis.summary(outcome.results['large'][name].p50)}.", ""]
            for plan in diagnosis.plans:
                lines += ["```", plan, "```", ""]
    return "\n".join(lines).rstrip() + "\n"


RESULTS_HEADER = """# Benchmark at a million reports

`make bench-scale` (bench/scale.py): each request's latency in milliseconds, one client
on one keep-alive connection, at 10,000 reports and again once the same database holds
1,000,000; then the bulk import's rate and memory. One section per database, each from its
latest run (`BENCH_SCALE_DB=sqlite make bench-scale` for SQLite alone).
"""


def merge_results(existing: str, sections: dict[str, str]) -> str:
    """--output with these databases' sections replaced (the others kept)."""
    kept = {}
    for db, title in TITLES.items():
        match = re.search(rf"^## {title}\n.*?(?=^## |\Z)", existing, re.M | re.S)
        if match:
            kept[db] = match[0].rstrip() + "\n"
    kept.update(sections)
    return RESULTS_HEADER + "\n" + "\n".join(kept[db] for db in TITLES if db in kept)


def readme_block(results: str) -> str:
    """The summaries of --output's sections (what comes before their details)."""
    summaries = []
    for title in TITLES.values():
        match = re.search(
            rf"^## {title}\n(.*?)(?=^{re.escape(DETAILS)}|^## |\Z)", results, re.M | re.S
        )
        if match:
            summaries.append(f"{title}:\n\n{match[1].strip()}\n")
    return "\n".join(summaries)


def write_readme(readme: Path, block: str) -> None:
    text = readme.read_text(encoding="utf-8")
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        raise BenchError(f"{readme}: no {README_START} … {README_END} block")
    readme.write_text(
        text[: start + len(README_START)] + "\n" + block.rstrip() + "\n" + text[end:],
        encoding="utf-8",
    )


def facts_of(
    outcome: Outcome, settings: Settings, argv: list[str], date: dt.datetime
) -> list[tuple[str, str]]:
    """(label, text) pairs: the first, the run (date, machine, code, command), goes with
    the summary; the others with the details."""
    small, large = outcome.generation["small"], outcome.generation["large"]
    return [
        (
            "Run",
            f"{date:%Y-%m-%d %H:%M} UTC on {os.cpu_count()} CPUs ({base.cpu_model()}, shared by "
            f"the server, the database and the client), application code at {base.revision()}: "
            f"`{command_line(argv, settings)}`, {outcome.seconds:.0f} s for this database",
        ),
        (
            "Machine",
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}",
        ),
        (
            "Database",
            outcome.version
            + (
                " (scripts/with-postgres.sh: fsync, synchronous_commit and full_page_writes off)"
                if outcome.db == "postgresql"
                else ", a file in a temporary directory (the project's settings: WAL, synchronous=NORMAL)"
            ),
        ),
        (
            "Data",
            f"bench/scale_data.py: {outcome.small:,} reports in {small['seconds']} s, then "
            f"{large['added']:,} more in {large['seconds']} s"
            + (
                f" ({large['reindexed']} secondary indexes dropped, then made again after the load)"
                if large["reindexed"]
                else ""
            )
            + f", analysed in {large['analyze_seconds']} s; ten years, more recent ones, 8 "
            "categories, every status by age, 95 % located in Rennes with their districts, 2 % "
            "hidden, photos on 5 %, a history row each",
        ),
        (
            "Requests",
            f"`scripts/serve.sh` (granian, {WORKERS} worker, DEBUG off, throttles off, "
            "RESPONSE_CACHE=0, STATS_CACHE_SECONDS=0); anonymous but the agent's and the stats "
            f"(token); {settings.warmup} warm-up requests then {settings.requests} measured (fewer "
            f"when they take more than {settings.budget:g} s), each checked (200, shape); ids, "
            "districts, categories and months vary from one request to the next; p99 by nearest "
            "rank",
        ),
        (
            "Counts",
            ", ".join(
                f"{name}: {len(outcome.results['large'][name].latencies_ms)}"
                for name in outcome.results["large"]
            ),
        ),
    ]


def command_line(argv: list[str], settings: Settings) -> str:
    """How to run this again: `make bench-scale` with the knobs that were set."""
    return base.rerun_command(
        argv,
        knobs=tuple(
            f"BENCH_SCALE_{name}"
            for name in ("DB", "ROWS", "REQUESTS", "BUDGET", "IMPORT_ROWS", "CSV_ROWS")
        ),
        target="bench-scale",
        script="bench/scale.py",
        postgres="postgresql" in settings.databases,
    )


# --- Main -----------------------------------------------------------------------------


def _sizes(text: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text.split(",") if part.strip()]


def parse_args(argv: list[str]) -> Settings:
    env = os.environ
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=int(env.get("BENCH_SCALE_ROWS") or 1_000_000))
    parser.add_argument(
        "--db",
        choices=["both", "postgresql", "sqlite"],
        default=env.get("BENCH_SCALE_DB") or "both",
    )
    parser.add_argument("--requests", type=int, default=int(env.get("BENCH_SCALE_REQUESTS") or 200))
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--budget", type=float, default=float(env.get("BENCH_SCALE_BUDGET") or 30))
    parser.add_argument(
        "--import-rows",
        type=_sizes,
        default=_sizes(env.get("BENCH_SCALE_IMPORT_ROWS") or "100000,1000000"),
    )
    parser.add_argument(
        "--csv-rows", type=int, default=int(env.get("BENCH_SCALE_CSV_ROWS") or 200_000)
    )
    parser.add_argument("--output", type=Path, default=BENCH / "results-scale.md")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    parser.add_argument("--no-readme", dest="readme", action="store_const", const=None)
    parser.add_argument("--no-explain", dest="explain", action="store_false")
    args = parser.parse_args(argv)
    if args.rows < 1000:
        parser.error("--rows: at least 1000")
    if args.requests < 1:
        parser.error("--requests: at least 1")
    return Settings(**vars(args))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    settings = parse_args(argv)
    signal.signal(signal.SIGTERM, base._raise_system_exit)
    admin_url = os.environ.get("DATABASE_URL", "")
    if "postgresql" in settings.databases and not admin_url.startswith(
        ("postgres://", "postgresql://")
    ):
        print(
            "bench-scale: DATABASE_URL is not a PostgreSQL URL: run `make bench-scale`, or this "
            "script under scripts/with-postgres.sh (or --db sqlite)",
            file=sys.stderr,
        )
        return 1
    started = time.monotonic()
    date = dt.datetime.now(dt.UTC)
    workdir = Path(tempfile.mkdtemp(prefix="signalements-bench-scale."))
    sections, failed = {}, False
    try:
        for db in settings.databases:
            outcome = bench_database(db, settings, admin_url, workdir / db)
            sections[db] = render(outcome, facts_of(outcome, settings, argv, date))
            failed = failed or outcome.failed
            print(f"\n{sections[db]}", flush=True)
    except BenchError as error:
        print(f"\nmake bench-scale failed: {error}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    existing = settings.output.read_text(encoding="utf-8") if settings.output.exists() else ""
    results = merge_results(existing, sections)
    settings.output.write_text(results, encoding="utf-8")
    if settings.readme is not None:
        write_readme(settings.readme, readme_block(results))
    written = f"{settings.output} and {settings.readme}" if settings.readme else settings.output
    print(f"Written to {written}; {time.monotonic() - started:.0f} s in all")
    if failed:
        print("make bench-scale failed: wrong answers (see the table)", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
