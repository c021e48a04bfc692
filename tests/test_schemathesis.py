"""Property-based tests of the whole API against its own OpenAPI schema (Schemathesis).

The schema is the one the app serves (`/api/schema/`), fetched in-process through the
WSGI application: no server, no network. Schemathesis makes one test per operation
(every method of every path) and each runs twice, anonymously and as a staff user (HTTP
Basic). Every response must:

- not be a server error (5xx);
- have a status code the schema documents for that operation;
- have the documented content type, headers and body (JSON Schema of that status);
- answer an undocumented method with a 405 and a correct `Allow` header.

Generated strings may contain NUL bytes (PostgreSQL refuses them in text: the API must
answer 400, never 500), so this file is worth running on PostgreSQL too:
`scripts/with-postgres.sh .venv/bin/pytest tests/test_schemathesis.py`.

Runs are deterministic (`derandomize=True`): the same code and dependencies generate the
same requests, so a failure in CI reproduces locally. For a deeper (slower) search, raise
the number of generated requests per operation, e.g. `FUZZ_MAX_EXAMPLES=300`.
"""

import base64
import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import hypothesis
import pytest
import schemathesis
from django.core.cache import cache
from hypothesis import HealthCheck
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    ignored_auth,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from signalements_project.wsgi import application

pytestmark = pytest.mark.slow

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
# NUL bytes in generated strings (the default, made explicit: it is the point here).
schema.config.generation.update(allow_x00=True, deterministic=True)
# Show the `Authorization` header and cookies in "Reproduce with": the generated ones are
# often the cause of a failure, and the staff credentials only exist in the test database.
schema.config.output.sanitization.update(enabled=False)

# What the responses are checked for. Left out on purpose, as they test how strict the
# input parsing is rather than what the API answers:
# - `positive_data_acceptance`: schema-valid data is refused for rules a JSON Schema
#   cannot state (a date in the future, an inactive category, a lone latitude);
# - `negative_data_rejection`: DRF's parsers are lenient by design (0/1 for booleans,
#   "" for a null relation);
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    unsupported_method,
    allow_header_conformance,
    ignored_auth,
]

EXPECTED_OPERATIONS = {
    f"{method} {path}"
    for path, methods in {
        "/api/categories/": ["GET", "POST"],
        "/api/categories/{code}/": ["GET", "PUT", "PATCH", "DELETE"],
        "/api/signalements/": ["GET", "POST"],
        "/api/signalements/{id}/": ["GET", "PUT", "PATCH", "DELETE"],
        "/api/signalements/{id}/transition/": ["POST"],
        "/api/signalements/{id}/history/": ["GET"],
        "/api/signalements/{id}/comments/": ["GET", "POST"],
        "/api/signalements/{id}/similar/": ["GET"],
        "/api/signalements/{id}/attachments/": ["GET", "POST"],
        "/api/signalements/{id}/attachments/{attachment_id}/": ["DELETE"],
        "/api/signalements/export.csv": ["GET"],
        "/api/signalements/stats/": ["GET"],
        "/api/auth/token/": ["POST", "DELETE"],
        "/api/auth/tokens/": ["GET"],
        "/api/auth/tokens/{prefix}/": ["DELETE"],
        "/api/me/": ["GET"],
        "/api/me/erase-contact-data/": ["POST"],
        "/api/signalements/{id}/follow/": ["POST"],
        "/api/alerts/": ["POST"],
        "/api/subscriptions/confirm/{token}/": ["GET", "POST"],
        "/api/contact/confirm/{token}/": ["GET", "POST"],
        "/api/subscriptions/unsubscribe/{token}/": ["GET", "POST"],
        "/api/webhooks/": ["GET", "POST"],
        "/api/webhooks/{id}/": ["GET", "PUT", "PATCH", "DELETE"],
        "/api/webhooks/{id}/rotate-secret/": ["POST"],
        "/api/signalements/{id}/feedback/": ["POST"],
        "/api/feedback/": ["GET"],
        "/api/feedback/{id}/accept/": ["POST"],
        "/api/feedback/{id}/refuse/": ["POST"],
        "/api/feedback/{token}/": ["GET", "POST"],
        "/api/departments/": ["GET", "POST"],
        "/api/departments/{code}/": ["GET", "PUT", "PATCH", "DELETE"],
        "/api/areas/": ["GET", "POST"],
        "/api/areas/{code}/": ["GET", "PUT", "PATCH", "DELETE"],
        "/api/service-levels/": ["GET", "POST"],
        "/api/service-levels/{id}/": ["GET", "PUT", "PATCH", "DELETE"],
        "/api/routing-rules/": ["GET", "POST"],
        "/api/routing-rules/{id}/": ["GET", "PUT", "PATCH", "DELETE"],
        "/api/routing-rules/dry-run/": ["GET"],
        "/api/reply-templates/": ["GET", "POST"],
        "/api/reply-templates/{code}/": ["GET", "PUT", "PATCH", "DELETE"],
    }.items()
    for method in methods
}

STAFF_USERNAME = "fuzz-staff"
STAFF_PASSWORD = "fuzz-staff-password"  # exists only in the test database

# Objects created by `api_data`; ids are 1..N as sequences are reset for each test.
CATEGORY_CODES = ["voirie", "eclairage-public", "ancienne"]
SIGNALEMENT_IDS = [1, 2, 3, 4]


@schema.hook
def before_generate_path_parameters(context, strategy):
    """Random ids and codes almost never exist: mix in those of `api_data`, so that
    reads, updates and deletes also run on existing objects."""
    names = {parameter.name for parameter in context.operation.path_parameters}
    if names == {"id"}:
        existing = st.fixed_dictionaries({"id": st.sampled_from(SIGNALEMENT_IDS)})
    elif names == {"code"}:
        existing = st.fixed_dictionaries({"code": st.sampled_from(CATEGORY_CODES)})
    elif names == {"token"}:
        existing = st.fixed_dictionaries({"token": st.sampled_from(link_tokens())})
    else:
        return strategy
    return st.one_of(strategy, existing)


# When report 4 of `api_data` was resolved: within FEEDBACK_DAYS of the tests.
RESOLVED_AT = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)

# The alert of `api_data` (id 1), whose links' tokens the fuzzing mixes in.
ALERT_KEY = "fuzz-alert-key"


def link_tokens() -> list[str]:
    """Valid tokens of the emailed links: the alert's confirmation and unsubscribe, the
    unsubscribe of the emails about report 2 to its contact address, and the verdict's
    link of report 4 (resolved at `RESOLVED_AT`)."""
    from django.core import signing

    from signalements import feedback, subscriptions

    return [
        signing.dumps({"s": 1, "k": ALERT_KEY}, salt=subscriptions.CONFIRM_SALT),
        signing.dumps({"s": 1, "k": ALERT_KEY}, salt=subscriptions.UNSUBSCRIBE_SALT),
        signing.dumps(
            {"r": 2, "a": subscriptions.address_digest("habitant@example.com")},
            salt=subscriptions.UNSUBSCRIBE_SALT,
        ),
        signing.dumps({"r": 4, "t": feedback._stamp(RESOLVED_AT)}, salt=feedback.LINK_SALT),
    ]


@pytest.fixture
def api_data(django_db_reset_sequences):
    """A few categories (one in use, one inactive), reports (one private, one closed), an
    alert not confirmed yet and an inactive webhook endpoint."""
    from signalements.models import Category, Signalement, Status

    voirie = Category.objects.create(code="voirie", name="Voirie", group="Voirie")
    Category.objects.create(code="eclairage-public", name="Éclairage public", group="Voirie")
    Category.objects.create(code="ancienne", name="Ancienne catégorie", is_active=False)
    date = datetime(2025, 1, 15, 8, 30, tzinfo=UTC)
    Signalement.objects.create(description="Nid-de-poule", date=date, category=voirie)
    Signalement.objects.create(
        description="Lampadaire éteint",
        date=date,
        latitude=Decimal("48.1159"),
        longitude=Decimal("-1.6814"),
        contact_email="habitant@example.com",
    )
    Signalement.objects.create(description="Signalement privé", date=date, is_public=False)
    Signalement.objects.create(
        description="Déjà traité", date=date, status=Status.RESOLVED, resolved_at=RESOLVED_AT
    )
    assert sorted(Signalement.objects.values_list("id", flat=True)) == SIGNALEMENT_IDS
    # Routing: a department, an area and a reply template named like the category (the
    # codes the fuzzing mixes in), a rule and a service level (id 1), a verdict (id 1)
    # that asks to reopen report 4.
    from signalements.models import (
        Area,
        Department,
        Feedback,
        ReplyTemplate,
        RoutingRule,
        ServiceLevel,
    )

    department = Department.objects.create(code="voirie", name="Voirie")
    area = Area.objects.create(
        code="voirie",
        name="Centre",
        geometry={
            "type": "Polygon",
            "coordinates": [[[-1.7, 48.1], [-1.6, 48.1], [-1.6, 48.2], [-1.7, 48.2], [-1.7, 48.1]]],
        },
    )
    rule = RoutingRule.objects.create(order=1, department=department)
    rule.areas.add(area)
    assert rule.pk == 1
    assert ServiceLevel.objects.create(category=voirie, amount=2).pk == 1
    ReplyTemplate.objects.create(code="voirie", name="Pris en charge", body="{reference} suivi.")
    verdict = Feedback.objects.create(
        signalement_id=4, resolved_at=RESOLVED_AT, is_fixed=False, reopen="pending"
    )
    assert verdict.pk == 1
    from signalements.models import Subscription

    alert = Subscription.objects.create(
        kind="alert",
        email="veille@example.com",
        key=ALERT_KEY,
        area="bbox",
        min_latitude=Decimal("48.1"),
        min_longitude=Decimal("-1.7"),
        max_latitude=Decimal("48.2"),
        max_longitude=Decimal("-1.6"),
        frequency="immediate",
    )
    assert alert.pk == 1
    from signalements.models import WebhookEndpoint

    # Inactive: the fuzzer's report writes send nothing over the network.
    endpoint = WebhookEndpoint.objects.create(
        url="https://93.184.215.14/hooks", events=["signalement.created"], is_active=False
    )
    assert endpoint.pk == 1


@pytest.fixture(params=["anonymous", "staff"])
def auth_headers(request, api_data, django_user_model, settings):
    """Headers sent with every request: none, or a superuser's HTTP Basic credentials.

    (Anonymous runs also send generated `Authorization` and `sessionid` values now and
    then, since the schema declares these security schemes: bad credentials too must get
    a documented answer.)
    """
    # Basic auth checks a password on every request: a fast hasher keeps it cheap.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Schemathesis sends the account wrong passwords again and again (its check that bad
    # credentials are refused): the lockout would answer 429 after a few. Its own tests
    # are tests/test_lockout.py.
    settings.LOGIN_FAILURE_LIMIT = 0
    if request.param == "anonymous":
        return {}
    django_user_model.objects.create_superuser(STAFF_USERNAME, "staff@example.com", STAFF_PASSWORD)
    credentials = base64.b64encode(f"{STAFF_USERNAME}:{STAFF_PASSWORD}".encode()).decode()
    return {"Authorization": f"Basic {credentials}"}


def test_schema_has_every_operation():
    """The fuzzing below covers every operation of the schema: make sure none is lost."""
    operations = {result.ok().label for result in schema.get_all_operations()}
    assert operations == EXPECTED_OPERATIONS


# A transactional test database, as only that one can reset sequences: `api_data` gets
# ids 1..N on PostgreSQL too (where a rolled-back insert still uses up its id). All the
# examples of one test share it: what one request creates or deletes, the next ones see.
@pytest.mark.django_db(transaction=True, reset_sequences=True)
@schema.parametrize()
@hypothesis.settings(
    max_examples=int(os.environ.get("FUZZ_MAX_EXAMPLES", "50")),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
def test_api(case, auth_headers):
    # The throttle counts anonymous creates in the cache: start each request afresh,
    # so that no example gets a 429 because of those before it.
    cache.clear()
    case.call_and_validate(headers=auth_headers, checks=CHECKS)
