"""`make bench-scale` (bench/scale.py, bench/scale_data.py): the whole run at a tiny size
on SQLite (data generated in SQL, the server as `make serve` runs it, every request
checked, the import, the table written into the results and the README), and the pieces
that judge and report."""

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _load(name: str, path: Path):
    sys.path.insert(0, str(path.parent))  # bench/scale.py imports bench/run.py
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


scale = _load("bench_scale", ROOT / "bench" / "scale.py")

README = """# Project

<!-- bench-scale:start -->
(Filled in by `make bench-scale`.)
<!-- bench-scale:end -->

## After
"""


def test_the_whole_bench_runs_at_a_small_size_on_sqlite(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(README, encoding="utf-8")
    output = tmp_path / "results-scale.md"
    # A PostgreSQL section from an earlier run is kept.
    output.write_text("# old\n\n## PostgreSQL\n\nkept figures\n", encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if not key.startswith("BENCH_SCALE")}
    completed = subprocess.run(
        [
            *(sys.executable, "bench/scale.py", "--db", "sqlite", "--rows", "3000"),
            *("--requests", "15", "--warmup", "2", "--budget", "10"),
            *("--import-rows", "300,3000", "--csv-rows", "300"),
            *("--output", str(output), "--readme", str(readme)),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=230,
    )
    # Exit 0: every answer was a 200 of the expected shape, every import succeeded.
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]

    results = output.read_text(encoding="utf-8")
    assert "## PostgreSQL\n\nkept figures" in results
    section = results.split("## SQLite", 1)[1]
    rows = {
        line.split(" | ")[0].lstrip("| "): line
        for line in section.splitlines()
        if line.startswith("| ") and " / " in line
    }
    for target in scale.TARGETS:
        line = next(line for name, line in rows.items() if name.startswith(target.name))
        # p50 / p99 at both sizes, and the ratio.
        assert re.search(
            r"\| [\d.,]+ / [\d.,]+ \| [\d.,]+ / [\d.,]+ \| [\d.,]+ \| [\d.]+× / [\d.]+× \|", line
        ), line
        assert "error" not in line
    counts = re.search(r"^- Counts: (.*)$", section, re.M)[1]
    assert re.findall(r": (\d+)(?:, |$)", counts) == ["15"] * len(scale.TARGETS), counts
    for label in ("JSON lines, 300 rows", "JSON lines, 3,000 rows", "CSV, 300 rows"):
        assert re.search(rf"^\| {label} \| [\d.]+ \| [\d,]+ \| \d+ \|", section, re.M), label
    assert re.search(r"^\| Memory, 300 → 3,000 rows: \d+ → \d+ MB", section, re.M)

    text = readme.read_text(encoding="utf-8")
    block = text.split("<!-- bench-scale:start -->")[1].split("<!-- bench-scale:end -->")[0]
    assert "(Filled in by" not in block
    assert "SQLite:" in block and "| First page |" in block and "- Run: " in block
    assert "<!-- details -->" not in block and "- Data:" not in block  # the summary only
    assert text.startswith("# Project\n") and text.endswith("## After\n")


def test_the_generated_data_is_spread_as_described(tmp_path):
    """scale_data.py's reports: every status, eight categories, ten years, located ones
    with their districts, photos on 5 %, a history row each."""
    database = tmp_path / "data.sqlite3"
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": "x" * 50,
        "DATABASE_URL": f"sqlite:///{database}",
        "MEDIA_ROOT": str(tmp_path / "media"),
    }

    def step(*args: str) -> dict:
        completed = subprocess.run(
            [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert completed.returncode == 0, completed.stderr[-3000:]
        return json.loads(completed.stdout.strip().splitlines()[-1])

    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=120,
    )
    fixture = step("bench/scale_data.py", "setup", "--media", str(tmp_path / "media"))
    assert len(fixture["categories"]) == 8 and len(fixture["districts"]) == 8
    assert step("bench/scale_data.py", "grow", "--to", "4000")["added"] == 4000
    probe = step("bench/scale_data.py", "probe", "--deep-page", "10000", "--samples", "50")
    assert len(probe["ids"]) == 50 and len(probe["cursors"]) == 5 and len(probe["months"]) == 12
    assert (tmp_path / "media" / "photos" / "bench-scale" / "0.jpg").read_bytes()[:2] == b"\xff\xd8"

    import sqlite3

    connection = sqlite3.connect(database)

    def one(query: str):
        return connection.execute(query).fetchone()[0]

    report = "signalements_signalement"
    assert one(f"SELECT COUNT(DISTINCT status) FROM {report}") == 5
    assert one(f"SELECT COUNT(DISTINCT category_id) FROM {report}") == 8
    assert one(f"SELECT MIN(created_at) FROM {report}") < "2017-06"
    assert one(f"SELECT COUNT(*) FROM {report} WHERE latitude IS NULL") == 200
    assert one(f"SELECT COUNT(*) FROM {report} WHERE NOT is_public") == 80
    assert one("SELECT COUNT(*) FROM signalements_attachment") == 200
    assert one("SELECT COUNT(*) FROM signalements_historicalsignalement") == 4000
    assert one("SELECT COUNT(DISTINCT signalement_id) FROM signalements_signalement_areas") > 2000
    # Old reports are mostly closed, recent ones mostly open.
    old_open = one(
        f"SELECT AVG(status IN ('new', 'acknowledged', 'in_progress')) FROM {report} "
        "WHERE created_at < date('now', '-1 year')"
    )
    recent_open = one(
        f"SELECT AVG(status IN ('new', 'acknowledged', 'in_progress')) FROM {report} "
        "WHERE created_at > date('now', '-30 days')"
    )
    assert old_open < 0.05 < 0.4 < recent_open
    connection.close()


# --- What judges and reports ----------------------------------------------------------


def test_answers_of_the_wrong_shape_are_refused():
    page = json.dumps(
        {"count": 1, "next": None, "previous": None, "results": [{"id": 1, "description": "x"}]}
    )
    assert scale.check_answer("page", "/api/signalements/", 200, page.encode()) is None
    assert "status 500" in scale.check_answer("page", "/", 500, b"{}")
    assert "not a page" in scale.check_answer("page", "/", 200, b'{"results": []}')
    assert "a deep page of 1" in scale.check_answer("cursor", "/", 200, page.encode())
    assert scale.check_answer("detail", "/api/signalements/7/", 200, b'{"id": 7}') is None
    assert "not report 7" in scale.check_answer("detail", "/api/signalements/7/", 200, b'{"id": 8}')
    assert "not statistics" in scale.check_answer("stats", "/", 200, b'{"total": "1"}')
    assert "not JSON" in scale.check_answer("stats", "/", 200, b"<html>")


def test_a_target_is_judged_on_its_p99_and_its_growth():
    first_page = next(target for target in scale.TARGETS if target.name == "First page")
    small = scale.Sample([2.0] * 99 + [4.0])
    assert scale.judge(first_page, "postgresql", small, scale.Sample([3.0] * 100)) == (True, "")
    met, why = scale.judge(first_page, "postgresql", small, scale.Sample([3.0] * 98 + [25.0] * 2))
    assert not met and why == "p99 25.0 ms ≥ 20 ms"
    # The growth is judged on the p50.
    met, why = scale.judge(first_page, "postgresql", small, scale.Sample([3.5] * 100))
    assert not met and why == "p50 1.75× the p50 at 10k"
    # SQLite: p99 under 50 ms, whatever the growth.
    assert scale.judge(first_page, "sqlite", small, scale.Sample([30.0] * 100)) == (True, "")
    deep = next(target for target in scale.TARGETS if target.name.startswith("Page 500"))
    assert scale.judge(deep, "postgresql", small, scale.Sample([900.0] * 100)) == (None, "")


def test_auto_explain_plans_are_read_from_the_server_log():
    log = (
        "2026-11-30 19:34:15.628 UTC [24745] LOG:  duration: 12.231 ms  plan:\n"
        "\tQuery Text: \n"
        "\t        SELECT COUNT(*)\n"
        "\t        FROM signalements_signalement WHERE status = 'new'\n"
        "\tAggregate  (cost=1.00..2.00 rows=1 width=8) (actual time=12.1..12.1 rows=1 loops=1)\n"
        "\t  ->  Seq Scan on signalements_signalement  (cost=0.00..1.00 rows=900 width=0) "
        "(actual time=0.01..11.5 rows=1000000 loops=1)\n"
        "2026-11-30 19:34:15.700 UTC [24745] LOG:  duration: 3.5 ms  plan:\n"
        "\tQuery Text: SELECT 1\n"
        "\tResult  (cost=0.00..0.01 rows=1 width=4) (actual time=0.001..0.001 rows=1 loops=1)\n"
    )
    plans = scale.slowest_plans(log)
    assert plans[0].startswith(
        "12.2 ms: SELECT COUNT(*) FROM signalements_signalement WHERE status = 'new'\nAggregate"
    )
    assert plans[1].startswith("3.5 ms: SELECT 1\nResult")
    assert (
        scale.costliest_node(plans[0]) == "Seq Scan on signalements_signalement (12 ms of its own)"
    )


def test_each_database_keeps_its_section_and_the_readme_gets_the_summaries():
    existing = scale.merge_results("", {"postgresql": "## PostgreSQL\n\nold\n"})
    merged = scale.merge_results(
        existing, {"sqlite": f"## SQLite\n\n| table |\n\n{scale.DETAILS}\n\n- Data: …\n"}
    )
    assert merged.startswith(scale.RESULTS_HEADER)
    assert "## PostgreSQL\n\nold\n" in merged and "## SQLite\n\n| table |" in merged
    block = scale.readme_block(merged)
    assert block == "PostgreSQL:\n\nold\n\nSQLite:\n\n| table |\n"
