"""The whole API fuzzed by `schemathesis run` against the production server
(`scripts/serve.sh`, as `make serve` runs it), on PostgreSQL (`make test-postgres`, which
CI runs): every operation, as an anonymous client and as an agent, NUL bytes on, every
phase (examples, coverage, fuzzing, stateful), **all** checks. Bounded in time
(FUZZ_SECONDS per caller, 100 by default: under 5 minutes for both).

Two checks replaced by copies (tests/fuzz_hooks.py): `positive_data_acceptance`, which
then tolerates refusals for the API's rules that OpenAPI cannot state, each named with
its reason (RULES_OPENAPI_CANNOT_STATE); `negative_data_rejection`, which then tolerates
a query whose only fault is a generated null (a query string cannot carry one: it arrives
as the text `null`, a valid value). Everything else must hold.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .live import ON_POSTGRES, ROOT, LiveServer, api_token, live_database, server_environment

FUZZ_SECONDS = int(os.environ.get("FUZZ_SECONDS", "100"))
# A fixed seed: a failure found in CI is found again locally (FUZZ_SEED to explore more).
FUZZ_SEED = os.environ.get("FUZZ_SEED", "20261130")

SEED = """
from datetime import UTC, datetime
from decimal import Decimal
from signalements.models import Category, Signalement, Status
voirie = Category.objects.create(code="voirie", name="Voirie", group="Voirie")
Category.objects.create(code="eclairage-public", name="Éclairage public", group="Voirie")
Category.objects.create(code="ancienne", name="Ancienne", is_active=False)
date = datetime(2025, 1, 15, 8, 30, tzinfo=UTC)
Signalement.objects.create(description="Nid-de-poule", date=date, category=voirie)
Signalement.objects.create(description="Lampadaire", date=date, latitude=Decimal("48.1"),
                           longitude=Decimal("-1.6"), contact_email="habitant@example.com")
Signalement.objects.create(description="Privé", date=date, is_public=False)
Signalement.objects.create(description="Traité", date=date, status=Status.RESOLVED)
"""


def seed(database_url: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", SEED],
        cwd=ROOT,
        env=server_environment(database_url),
        check=True,
        capture_output=True,
    )


def fuzz(
    server: LiveServer, headers: list[str], report: Path, options: list[str] = ()
) -> subprocess.CompletedProcess:
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        f"http://127.0.0.1:{server.port}/api/schema/?format=json",
        "--checks",
        "all",
        "--exclude-checks",
        "positive_data_acceptance,negative_data_rejection",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--generation-allow-x00",
        "true",
        "--max-time",
        str(FUZZ_SECONDS),
        "--continue-on-failure",
        "--max-failures",
        "100",
        "--report",
        "junit",
        "--report-junit-path",
        str(report),
        "--no-color",
        "--seed",
        FUZZ_SEED,
        *options,
    ]
    for header in headers:
        command += ["-H", header]
    return subprocess.run(
        command,
        cwd=ROOT,
        env={**os.environ, "SCHEMATHESIS_HOOKS": "tests.fuzz_hooks", "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=FUZZ_SECONDS + 240,
    )


@pytest.mark.skipif(not ON_POSTGRES, reason="runs under make test-postgres (CI)")
@pytest.mark.parametrize("caller", ["anonymous", "agent"])
def test_schemathesis_finds_nothing_against_the_live_server(caller, tmp_path):
    with live_database("postgresql", tmp_path) as database_url:
        seed(database_url)
        headers = []
        excluded = []
        if caller == "agent":
            headers.append(f"Authorization: Token {api_token(database_url, 'agent')}")
            # Logging out (DELETE /api/auth/token/, /api/auth/tokens/{prefix}/) would
            # revoke the token the run uses, and the rest would go unauthenticated; the
            # anonymous run covers those operations.
            excluded = ["--exclude-path-regex", "^/api/auth/"]
        server = LiveServer(database_url, workers=2)
        try:
            completed = fuzz(server, headers, tmp_path / "junit.xml", options=excluded)
        finally:
            server.stop()
    output = completed.stdout + completed.stderr
    log = Path(os.environ.get("FUZZ_LOG_DIR", tmp_path)) / f"schemathesis-{caller}.log"
    log.write_text(output)
    print(output[output.rfind("SUMMARY") :] if "SUMMARY" in output else output[-3000:])
    assert completed.returncode == 0, f"see {log}\n{output[-20000:]}"
