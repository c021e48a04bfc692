"""How fast the back office's pages answer with 10,000 reports (issue "Wave 2 · 4/9": the
admin must stay fast at that size). In-process, through Django's test client logged in as
the demo agent (no HTTP server: what is measured is the page's own work, queries and
templates), on a new database of its own:

    make bench-admin                      # PostgreSQL (a throwaway cluster)
    BENCH_DB=sqlite make bench-admin      # SQLite

Knobs: BENCH_ADMIN_ROWS (10000), BENCH_ADMIN_REQUESTS (40 per page, after 5 warm-ups).
Prints, per page: the median and 95th percentile in ms, and the number of queries.
"""

import os
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROWS = int(os.environ.get("BENCH_ADMIN_ROWS") or 10_000)
REQUESTS = int(os.environ.get("BENCH_ADMIN_REQUESTS") or 40)
WARMUP = 5


def database_url(workdir: str) -> str:
    url = os.environ.get("DATABASE_URL", "")
    if os.environ.get("BENCH_DB") == "sqlite" or not url.startswith("postgres"):
        return f"sqlite:///{workdir}/admin-bench.sqlite3"
    import psycopg

    name = f"admin_bench_{os.getpid()}"
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name}")
        connection.execute(f"CREATE DATABASE {name}")
    return url.rsplit("/", 1)[0] + f"/{name}"


def load(rows: int) -> None:
    """The demo data, then `rows` reports over two years: every category and status,
    located in Rennes, a third assigned to the agent."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.utils import timezone
    from simple_history.utils import bulk_create_with_history

    from signalements.models import Category, Signalement, Status

    call_command("migrate", verbosity=0)
    call_command("load_demo_data", reports=0, stdout=open(os.devnull, "w"))  # noqa: SIM115
    agent = get_user_model().objects.get(username="agent")
    categories = list(Category.objects.all())
    rng = random.Random(2025)
    now = timezone.now()
    reports = []
    for number in range(rows):
        created = now - timedelta(minutes=rng.randrange(2 * 365 * 24 * 60))
        status = rng.choice(Status.values)
        reports.append(
            Signalement(
                title=f"Signalement {number}",
                description=f"Description du signalement de test {number}.",
                date=created - timedelta(hours=1),
                created_at=created,
                category=rng.choice(categories),
                status=status,
                resolved_at=created + timedelta(days=3) if status == Status.RESOLVED else None,
                latitude=Decimal("48.11") + Decimal(rng.randint(-2000, 2000)) / 100_000,
                longitude=Decimal("-1.68") + Decimal(rng.randint(-2000, 2000)) / 100_000,
                assigned_to=agent if rng.random() < 0.33 else None,
                extra={},
            )
        )
    for start in range(0, len(reports), 1000):
        bulk_create_with_history(reports[start : start + 1000], Signalement)


def measure(client, path: str) -> tuple[float, float, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(WARMUP):
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
    timings = []
    for _ in range(REQUESTS):
        start = time.perf_counter()
        client.get(path)
        timings.append((time.perf_counter() - start) * 1000)
    with CaptureQueriesContext(connection) as queries:
        client.get(path)
    timings.sort()
    return statistics.median(timings), timings[int(len(timings) * 0.95) - 1], len(queries)


def main() -> None:
    sys.path.insert(0, str(ROOT))
    workdir = tempfile.mkdtemp(prefix="admin-bench-")
    os.environ.update(
        DATABASE_URL=database_url(workdir),
        DJANGO_SETTINGS_MODULE="signalements_project.settings",
        SECRET_KEY="bench-only",
        ALLOWED_HOSTS="testserver",
        DEBUG="0",
        # Django's test client speaks plain HTTP: not redirected to HTTPS.
        SECURE_SSL_REDIRECT="0",
    )
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    from signalements.models import Category, Signalement

    started = time.perf_counter()
    load(ROWS)
    print(
        f"{connection.vendor}: {Signalement.objects.count()} reports loaded in "
        f"{time.perf_counter() - started:.0f} s; {REQUESTS} requests per page"
    )
    client = Client()
    client.force_login(get_user_model().objects.get(username="agent"))
    report = Signalement.objects.order_by("-created_at").first()
    category = Category.objects.get(code="eclairage-public")
    pages = {
        "dashboard (admin home)": "/admin/",
        "report list, first page": "/admin/signalements/signalement/",
        "report list, status + category": (
            f"/admin/signalements/signalement/?status__exact=new&category__id__exact={category.pk}"
        ),
        "report list, page 100": "/admin/signalements/signalement/?p=100",
        "report list, search": "/admin/signalements/signalement/?q=lampadaire",
        "report page": f"/admin/signalements/signalement/{report.pk}/change/",
        "category page": f"/admin/signalements/category/{category.pk}/change/",
    }
    print("| page | p50 ms | p95 ms | queries |\n|---|--:|--:|--:|")
    for name, path in pages.items():
        p50, p95, queries = measure(client, path)
        print(f"| {name} | {p50:.1f} | {p95:.1f} | {queries} |")


if __name__ == "__main__":
    main()
