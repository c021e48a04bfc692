"""A TypeScript client generated from the committed OpenAPI schema (openapi-typescript's
types, openapi-fetch's requests, as integrators generate theirs) runs an agent's full
flow against a real server (pytest-django's live server, over HTTP): token login, creates
with a category's extra answers and a location, the list's filters and pages followed by
`next`, a read, a transition, a comment, and a refused create read as the schema's typed
validation error. The flow is tests/ts_client/flow.ts; the Python client runs the same
one in test_generated_client.py.

The types are generated afresh from schema.yml in a temporary directory at each run and
`tsc` checks the flow against them, so a schema change that breaks TypeScript clients
fails here. The tools are pinned in tests/ts_client/package-lock.json and installed by
`npm ci` into tests/ts_client/node_modules (ignored by git), once a session. Without
Node.js the test is skipped on a developer's machine, and fails in CI (`CI=true`)."""

import fcntl
import json
import os
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest

from signalements.models import Comment

from .test_generated_client import (
    AGENT,
    CATEGORY,
    COMMENT,
    PASSWORD,
    assert_the_flow_is_recorded,
    reports_the_filters_leave_out,
    street_lighting_and_agent,
)

ROOT = Path(__file__).resolve().parent.parent
CLIENT = ROOT / "tests" / "ts_client"

pytestmark = pytest.mark.django_db(transaction=True)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


@pytest.fixture(scope="session")
def npm():
    """The path of `npm`, or a skip (a failure in CI) when Node.js is not installed."""
    missing = [tool for tool in ("node", "npm", "npx") if shutil.which(tool) is None]
    if missing:
        reason = f"Node.js is not installed ({', '.join(missing)} not found on PATH)"
        if in_ci():
            pytest.fail(f"{reason}: CI must run the TypeScript client's test")
        pytest.skip(f"{reason}; CI runs this test")
    return shutil.which("npm")


@contextmanager
def client_folder_locked():
    """tests/ts_client for this test alone: `npm ci` empties node_modules first, which
    must not happen under another session's `tsc` (several people share a checkout)."""
    with open(CLIENT / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


INSTALLED = []  # whether `npm ci` ran in this session


def run(command: list[str], step: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """`command` in tests/ts_client; a failure with its output if it fails."""
    done = subprocess.run(command, cwd=CLIENT, capture_output=True, text=True, timeout=timeout)
    if done.returncode:
        pytest.fail(
            f"{step} failed ({done.returncode}): {' '.join(command)}\n{done.stdout}\n{done.stderr}"
        )
    return done


def test_an_agent_follows_the_full_flow_with_a_generated_typescript_client(
    npm, live_server, tmp_path
):
    agent = street_lighting_and_agent()
    reports_the_filters_leave_out()  # created before the flow's: left out by date too
    npx = [shutil.which("npx"), "--no", "--"]  # only the locally installed tools
    # A tsconfig of the run's own: the schema's types from tmp_path, the output there too.
    schema = tmp_path / "schema.d.ts"
    out = tmp_path / "out"
    tsconfig = tmp_path / "tsconfig.json"
    tsconfig.write_text(
        json.dumps(
            {
                "extends": str(CLIENT / "tsconfig.json"),
                "compilerOptions": {
                    "paths": {"signalements-schema": [str(schema)]},
                    "typeRoots": [str(CLIENT / "node_modules" / "@types")],
                    "outDir": str(out),
                },
                "files": [str(CLIENT / "flow.ts")],
            }
        )
    )
    # The compiled flow is an ES module that imports openapi-fetch from node_modules.
    (tmp_path / "package.json").write_text('{"type": "module"}')
    (tmp_path / "node_modules").symlink_to(CLIENT / "node_modules")

    with client_folder_locked():
        if not INSTALLED:
            run([npm, "ci", "--no-audit", "--no-fund"], "npm ci", timeout=600)
            INSTALLED.append(True)
        run([*npx, "openapi-typescript", str(ROOT / "schema.yml"), "-o", str(schema)], "generate")
        run([*npx, "tsc", "--noEmit", "-p", str(tsconfig)], "tsc --noEmit")
        run([*npx, "tsc", "-p", str(tsconfig)], "tsc")
        flow = subprocess.run(
            ["node", str(out / "flow.js")],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            env={
                **os.environ,
                "API_URL": live_server.url,
                "API_USERNAME": AGENT,
                "API_PASSWORD": PASSWORD,
                "API_CATEGORY": CATEGORY,
            },
        )

    assert flow.returncode == 0, f"the flow failed:\n{flow.stdout}\n{flow.stderr}"
    lines = flow.stdout.splitlines()
    assert lines[-1].startswith("RESULT "), flow.stdout
    result = json.loads(lines[-1].removeprefix("RESULT "))
    assert result["pages"] == 2
    assert result["error"] == {"attr": "extra.lamp_state", "code": "required"}
    assert result["transitioned"] == result["created"][0]
    assert "transition: status acknowledged" in lines
    assert_the_flow_is_recorded(agent, result["created"])
    assert Comment.objects.filter(pk=result["comment"], body=COMMENT, author=agent).exists()
