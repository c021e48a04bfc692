"""`make bench` (bench/): what can be checked without wrk, servers or PostgreSQL. The
wrk samples in tests/wrk_samples/ are real wrk 4.1 outputs."""

import importlib.util
import json
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from signalements.models import Signalement

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = Path(__file__).resolve().parent / "wrk_samples"
SEED_SOURCE = ROOT.parent / "shared" / "anchors" / "fastapi_seed" / "app"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


run = _load("bench_run", ROOT / "bench" / "run.py")
load_project = _load("bench_load_project", ROOT / "bench" / "load_project.py")


def test_wrk_report_is_parsed():
    result = run.parse_wrk((SAMPLES / "list_ok.txt").read_text())

    assert result.requests == 1721
    assert result.requests_per_sec == 1715.54
    assert result.latency_ms == {50: 10.61, 75: 15.10, 90: 19.38, 99: 43.24}
    assert result.non_2xx == 0 and result.socket_errors == {}
    assert result.errors == []


def test_non_2xx_responses_are_errors():
    result = run.parse_wrk((SAMPLES / "not_found.txt").read_text())

    assert result.requests == 3101 and result.non_2xx == 3101
    assert result.errors == ["3101 non-2xx responses"]


def test_socket_errors_and_no_request_are_errors():
    result = run.parse_wrk((SAMPLES / "read_errors.txt").read_text())

    assert result.socket_errors == {"connect": 0, "read": 19959, "write": 0, "timeout": 0}
    assert result.errors == ["no request completed", "19959 socket read errors"]


@pytest.mark.parametrize(
    ("text", "ms"), [("850.00us", 0.85), ("43.24ms", 43.24), ("1.20s", 1200.0), ("2.00m", 120_000)]
)
def test_wrk_durations_in_milliseconds(text, ms):
    assert run._duration_ms(text) == pytest.approx(ms)


def test_anything_else_is_not_a_wrk_report():
    with pytest.raises(ValueError, match="not a wrk report"):
        run.parse_wrk("unable to connect to 127.0.0.1:8939 Connection refused")


def test_the_rows_are_the_same_on_every_run_and_valid():
    rows = run.make_rows(500)

    assert rows == run.make_rows(500) and len(rows) == 500
    assert len({description for description, _ in rows}) == 500
    for description, date in rows:
        assert 1 <= len(description) <= 4000
        parsed = datetime.fromisoformat(date)
        assert parsed.tzinfo is not None and parsed < datetime(2025, 4, 29, tzinfo=UTC)


@pytest.mark.django_db
def test_the_project_loader_stores_the_rows_with_defaults_and_history():
    rows = run.make_rows(3)

    assert load_project.load(rows) == 3

    reports = list(Signalement.objects.order_by("id"))
    assert [(r.description, r.date) for r in reports] == [
        (description, datetime.fromisoformat(date)) for description, date in rows
    ]
    assert all(r.status == "new" and r.is_public and r.category_id is None for r in reports)
    assert Signalement.history.count() == 3


def test_report_table_and_ratio():
    def result(rate):
        return run.WrkResult(
            requests=100, requests_per_sec=rate, latency_ms={50: 1.0, 90: 2.0, 99: 3.25}
        )

    results = {
        "project": {name: result(50.0) for name in run.SCENARIOS},
        "seed": {name: result(200.0) for name in run.SCENARIOS},
    }

    report = run.render(results, [("Rows", "10,000")], "sqlite")

    assert report.startswith("## SQLite\n")
    assert "| List of 100, warm | 50 | 200 | 0.25× | ≥ 3×: not met | 1.0 / 3.2 | 1.0 / 3.2 |" in (
        report
    )
    assert "| Create | 50 | 200 | 0.25× | ≥ 2×, p99 < 100 ms: not met |" in report
    assert report.count("| 0.25× |") == len(run.SCENARIOS)
    assert "- Rows: 10,000" in report


def test_a_target_is_met_at_its_ratio_and_create_also_by_its_p99():
    def result(rate, p99=3.0):
        return run.WrkResult(requests=1, requests_per_sec=rate, latency_ms={50: 1, 99: p99})

    assert run.verdict("Detail, warm", result(200), result(100)) == "≥ 2×: met"
    assert run.verdict("Detail, cold", result(99), result(100)) == "≥ 1×: not met"
    assert run.verdict("Create", result(300, p99=150), result(100)).endswith("not met")
    assert run.verdict("Create", result(300, p99=50), result(100)).endswith(": met")


def test_each_database_keeps_its_section_of_the_results():
    first = run.merge_results("", "## PostgreSQL\n\nold postgres\n", "postgresql")
    both = run.merge_results(first, "## SQLite\n\nsqlite figures\n", "sqlite")
    again = run.merge_results(both, "## PostgreSQL\n\nnew postgres\n", "postgresql")

    assert again.startswith(run.RESULTS_HEADER)
    assert "new postgres" in again and "old postgres" not in again
    assert again.index("## PostgreSQL") < again.index("## SQLite")
    assert "sqlite figures" in again


def test_the_wrk_scripts_send_every_thread_its_own_requests(tmp_path):
    server = run.Server(
        name="project",
        command=[],
        cwd=tmp_path,
        env={},
        list_path="",
        detail_path="",
        create_path="",
        paginated=True,
        log=tmp_path / "log",
        list_lua='"/l?page=" .. page',
        detail_lua='"/d/" .. number',
    )
    for scenario in run.LUA_BODIES:
        script = run.lua_script(server, scenario, 2000, tmp_path).read_text()
        assert 'thread:set("id"' in script and "local rows = 2000" in script
    assert (
        run.lua_script(server, "List of 100, cold", 2000, tmp_path)
        .read_text()
        .startswith("PAGES = 20\n")
    )
    # Only pages that exist: 500 reports are 5 pages of 100.
    assert (
        run.lua_script(server, "List of 100, cold", 500, tmp_path)
        .read_text()
        .startswith("PAGES = 5\n")
    )
    mixed = run.lua_script(server, "Mixed 80/20", 2000, tmp_path).read_text()
    assert json.loads(re.search(r"create_body = '(.*)'", mixed)[1]) == run.CREATE_BODY


def test_each_wrk_run_gives_its_scripts_another_number(tmp_path):
    """The cold scenarios' counters start again in each run (the warm-up, then the
    measure): the run's number keeps the measure from asking what the warm-up asked,
    which a cache would then keep."""
    settings = run.parse_args([])
    first = run.wrk_command("http://x/", settings, "1s", tmp_path / "a.lua")
    second = run.wrk_command("http://x/", settings, "1s", tmp_path / "a.lua")
    assert first[-2] == second[-2] == "--" and first[-1] != second[-1]
    assert "run = tonumber(args[1])" in run.LUA_PRELUDE
    assert "(run * 100 + (id or 0))" in run.LUA_PRELUDE


def test_the_command_line_names_the_knobs(monkeypatch):
    monkeypatch.setenv("MAKELEVEL", "1")
    monkeypatch.setenv("BENCH_ROWS", "2000")
    monkeypatch.delenv("BENCH_DURATION", raising=False)

    assert run.command_line([]) == "BENCH_ROWS=2000 make bench"


def test_settings_from_the_environment_and_flags(monkeypatch):
    monkeypatch.setenv("BENCH_CONNECTIONS", "32")

    settings = run.parse_args(["--rows", "2000", "--duration", "30s"])

    assert (settings.rows, settings.duration, settings.connections) == (2000, "30s", 32)
    assert settings.wrk_parameters == "-t2 -c32 -d30s --timeout=10s --latency"


def test_the_create_script_posts_the_checked_body():
    lua = (ROOT / "bench" / "create.lua").read_text(encoding="utf-8")
    body = re.search(r"^wrk\.body = '(.*)'$", lua, re.M)[1]

    assert json.loads(body) == run.CREATE_BODY


def test_the_seed_requirements_are_pinned():
    lines = (ROOT / "bench" / "requirements-seed.txt").read_text().splitlines()
    requirements = [line for line in lines if line and not line.startswith("#")]

    assert len(requirements) == 4
    assert all(re.fullmatch(r"[\w\-\[\]]+==[\w.]+", line) for line in requirements)


@pytest.mark.skipif(not SEED_SOURCE.is_dir(), reason="no ../shared beside this clone")
def test_the_seed_copy_is_identical_to_its_source():
    def files(top: Path) -> dict[str, bytes]:
        return {
            str(path.relative_to(top)): path.read_bytes()
            for path in sorted(top.rglob("*"))
            if path.is_file() and "__pycache__" not in path.parts
        }

    assert files(ROOT / "bench" / "seed" / "app") == files(SEED_SOURCE)
