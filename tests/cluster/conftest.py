"""One cluster for the whole run (starting one takes half a minute): every test leaves it
as it found it, its parts running."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from .cluster import Cluster


@pytest.fixture(scope="session")
def cluster():
    # Not under pytest's own temporary directory, which the `postgres` user (the databases'
    # owner when the tests run as root) may not enter.
    directory = Path(tempfile.mkdtemp(prefix="signalements-cluster-"))
    os.chmod(directory, 0o755)
    cluster = Cluster(directory / "cluster")
    try:
        cluster.up()
        yield cluster
    finally:
        cluster.down()
        shutil.rmtree(directory, ignore_errors=True)
