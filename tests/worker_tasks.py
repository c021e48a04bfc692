"""Tasks for the tests of the real worker (tests/test_tasks.py): the worker imports them
from here, as it imports the project's own. Each writes what it did to a file, one line
per run, so that the test sees every attempt."""

from datetime import timedelta
from pathlib import Path

from signalements.tasks import retried_task

ONE_SECOND = timedelta(seconds=1)


def _lines(path: str) -> list[str]:
    file = Path(path)
    return file.read_text().splitlines() if file.exists() else []


def _write(path: str, line: str) -> None:
    with open(path, "a") as file:
        file.write(line + "\n")


@retried_task(delays=(ONE_SECOND, ONE_SECOND))
def flaky(path: str, failures: int) -> str:
    """Fails its first `failures` runs, then succeeds."""
    runs = len(_lines(path)) + 1
    if runs <= failures:
        _write(path, f"failed {runs}")
        raise ConnectionError(f"run {runs} fails on purpose")
    _write(path, f"succeeded {runs}")
    return "done"


@retried_task(delays=(ONE_SECOND,))
def slow_once(path: str) -> str:
    """Its first run never ends (the test kills its worker); the next one succeeds."""
    import time

    runs = [line for line in _lines(path) if line.startswith("started")]
    _write(path, f"started {len(runs) + 1}")
    if not runs:
        time.sleep(600)
    _write(path, "done")
    return "done"
