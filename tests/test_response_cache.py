"""The response cache in front of Django (signalements/api/response_cache.py) and the data
version it is keyed by (signalements/data_version.py, migration 0009's triggers).

Each test calls the real WSGI stack (Django's WSGIHandler behind `ResponseCache`) in
process, counting what reaches Django, and compares what the cache serves with what
Django would answer now. `test_response_cache_live.py` does the same across two server
processes, under concurrent writes."""

import json
from wsgiref.util import setup_testing_defaults

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connection, transaction
from knox.models import AuthToken

from signalements import data_version, reporter_tokens
from signalements.api.response_cache import Entry, ResponseCache, Store
from signalements.models import Category, Signalement

from .factories import AttachmentFactory, CategoryFactory, SignalementFactory, UserFactory

LIST = "/api/signalements/"


class CountingApp:
    """Django's WSGI application, counting the requests that reach it."""

    def __init__(self):
        self.django = WSGIHandler()
        self.calls = 0

    def __call__(self, environ, start_response):
        self.calls += 1
        return self.django(environ, start_response)


@pytest.fixture
def django_app(db):
    # As Django's test client does: the test's transaction must outlive each request.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield CountingApp()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def front(django_app):
    return ResponseCache(django_app, max_bytes=16 * 1024 * 1024)


@pytest.fixture(autouse=True)
def _any_host(settings):
    settings.ALLOWED_HOSTS = ["testserver", "a.example", "b.example"]


def call(app, path, *, query="", method="GET", **headers):
    """(status, headers as a dict, body) of one request through a WSGI app."""
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "HTTP_HOST": "testserver",
        **{f"HTTP_{name.upper()}": value for name, value in headers.items()},
    }
    setup_testing_defaults(environ)
    return call_environ(app, environ)


def call_environ(app, environ: dict):
    """(status, headers as a dict, body) of one request, given its WSGI environment."""
    answer = {}

    def start_response(status, response_headers, exc_info=None):
        answer["status"] = int(status.split()[0])
        answer["headers"] = dict(response_headers)

    result = app(environ, start_response)
    body = b"".join(result)
    if hasattr(result, "close"):
        result.close()
    return answer["status"], answer["headers"], body


def test_a_repeated_anonymous_read_is_answered_without_django(front, django_app):
    report = SignalementFactory()
    for path in (LIST, f"{LIST}{report.pk}/"):
        before = django_app.calls
        first = call(front, path)  # remembered by the doorkeeper, not kept
        second = call(front, path)  # asked again: kept
        third = call(front, path)
        assert first[0] == second[0] == third[0] == 200
        assert third[2] == second[2] == first[2] == call(django_app, path)[2]
        assert django_app.calls == before + 3  # the first two reads, and the direct call
        assert third[1]["X-Cache"] == "hit"
        assert "X-Cache" not in first[1] and "X-Cache" not in second[1]
        assert {k: v for k, v in third[1].items() if k != "X-Cache"} == first[1]


def test_a_request_made_once_is_not_kept(front, django_app):
    """The doorkeeper: a one-off request (a counter in the query string) does not fill
    the store; after a write, a request seen before is kept from its first time."""
    report = SignalementFactory()
    for number in range(5):
        call(front, LIST, query=f"nocache={number}")
    assert front.store.entries == {}
    call(front, LIST)
    call(front, LIST)
    assert len(front.store.entries) == 1
    Signalement.objects.filter(pk=report.pk).update(title="Changé")
    call(front, LIST)  # a new version, a request seen before: kept at once
    assert call(front, LIST)[1]["X-Cache"] == "hit"


def _create(report):
    SignalementFactory(description="Nouveau signalement")


def _update(report):
    Signalement.objects.filter(pk=report.pk).update(title="Changé par update()")


def _save(report):
    report.title = "Changé par save()"
    report.save()


def _raw_sql(report):
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE signalements_signalement SET title = %s WHERE id = %s",
            ["Changé en SQL", report.pk],
        )


def _hide(report):
    Signalement.objects.filter(pk=report.pk).update(is_public=False)


def _delete(report):
    report.delete()


def _add_photo(report):
    AttachmentFactory(signalement=report)


def _rename_category(report):
    Category.objects.filter(pk=report.category_id).update(code="nouveau-code")


@pytest.mark.parametrize(
    "write",
    [_create, _update, _save, _raw_sql, _hide, _delete, _add_photo, _rename_category],
)
@pytest.mark.parametrize("detail", [False, True], ids=["list", "detail"])
def test_every_kind_of_write_is_seen_by_the_next_read(front, django_app, write, detail):
    report = SignalementFactory()
    path = f"{LIST}{report.pk}/" if detail else LIST
    before = call(front, path)
    call(front, path)
    assert call(front, path)[1].get("X-Cache") == "hit"

    write(report)

    after = call(front, path)
    assert "X-Cache" not in after[1]
    assert (after[0], after[2]) == call(django_app, path)[::2]
    if not (detail and write is _create):  # another report: this one reads the same
        assert (after[0], after[2]) != (before[0], before[2])


def test_the_version_grows_with_each_write_and_not_with_a_rolled_back_one(db):
    start = data_version.current()
    report = SignalementFactory()
    created = data_version.current()
    assert created > start
    with pytest.raises(RuntimeError), transaction.atomic():
        Signalement.objects.filter(pk=report.pk).update(title="Annulé")
        assert data_version.current() > created  # inside the writing transaction
        raise RuntimeError
    assert data_version.current() == created
    CategoryFactory()
    assert data_version.current() > created


def test_credentials_are_never_answered_from_the_anonymous_store(front, django_app):
    report = SignalementFactory(contact_email="private@example.org")
    agent = UserFactory(is_superuser=True)
    _, token = AuthToken.objects.create(user=agent)
    path = f"{LIST}{report.pk}/"

    anonymous = call(front, path)
    call(front, path)
    as_agent = call(front, path, authorization=f"Token {token}")
    anonymous_again = call(front, path)

    assert b"private@example.org" not in anonymous[2]
    assert b"private@example.org" in as_agent[2]
    assert "X-Cache" not in as_agent[1]
    assert anonymous_again[1]["X-Cache"] == "hit"
    assert b"private@example.org" not in anonymous_again[2]
    # And the agent's answer is not stored for anyone.
    calls = django_app.calls
    call(front, path, authorization=f"Token {token}")
    assert django_app.calls == calls + 1


def test_a_reporter_token_or_a_session_goes_to_django(front, django_app):
    token, stored = reporter_tokens.issue()
    report = SignalementFactory(is_public=False, reporter=None, **stored)
    path = f"{LIST}{report.pk}/"
    assert call(front, path)[0] == 404
    with_token = call(front, path, x_reporter_token=token)
    assert with_token[0] == 200
    assert json.loads(with_token[2])["contact_email"] == report.contact_email
    assert call(front, path)[0] == 404
    calls = django_app.calls
    call(front, path, cookie="sessionid=abc; csrftoken=x")
    call(front, path, cookie="sessionid=abc; csrftoken=x")
    assert django_app.calls == calls + 2


def test_languages_are_kept_apart(front):
    SignalementFactory()
    english = call(front, LIST, accept_language="en")
    french = call(front, LIST, accept_language="fr")
    call(front, LIST, accept_language="en")
    call(front, LIST, accept_language="fr")
    assert english[1]["Content-Language"] == "en"
    assert french[1]["Content-Language"] == "fr"
    again = call(front, LIST, accept_language="fr")
    assert again[1]["X-Cache"] == "hit"
    assert again[1]["Content-Language"] == "fr"


def test_hosts_and_schemes_are_kept_apart(front, settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.BEHIND_PROXY = True  # the requests come from the proxy (proxies.py)
    settings.FORWARDED_ALLOW_IPS = ["*"]
    report = SignalementFactory()
    _add_photo(report)
    path = f"{LIST}{report.pk}/"

    def photo_url(**headers):
        return json.loads(call(front, path, **headers)[2])["attachments"][0]["url"]

    for _ in range(3):  # the third round from the store
        assert photo_url(host="a.example").startswith("http://a.example/media/")
        assert photo_url(host="b.example").startswith("http://b.example/media/")
        assert photo_url(host="a.example", x_forwarded_proto="https").startswith(
            "https://a.example/media/"
        )


def test_formats_are_kept_apart(front):
    SignalementFactory()
    plain = call(front, LIST)
    by_query = call(front, LIST, query="format=geojson")
    by_accept = call(front, LIST, accept="application/geo+json")
    for _ in range(3):
        assert call(front, LIST)[1]["Content-Type"] == "application/json"
        assert call(front, LIST, query="format=geojson")[2] == by_query[2]
        assert call(front, LIST, accept="application/geo+json")[2] == by_accept[2]
    assert json.loads(plain[2])["results"]
    assert json.loads(by_query[2])["type"] == "FeatureCollection"
    assert by_accept[1]["Content-Type"] == "application/geo+json"


def test_query_strings_are_taken_as_sent(front):
    SignalementFactory(title="Ancien", date="2025-01-01T00:00:00Z")
    SignalementFactory(title="Récent", date="2025-06-01T00:00:00Z")

    def titles(query):
        return [item["title"] for item in json.loads(call(front, LIST, query=query)[2])["results"]]

    for _ in range(3):
        assert titles("ordering=date") == ["Ancien", "Récent"]
        assert titles("ordering=-date") == ["Récent", "Ancien"]


def test_an_etag_and_a_304_without_django(front, django_app):
    report = SignalementFactory()
    other = SignalementFactory()
    path = f"{LIST}{report.pk}/"
    call(front, path)
    status, headers, _ = call(front, path)
    etag = headers["ETag"]
    assert status == 200 and etag.startswith('"')

    calls = django_app.calls
    status, headers, body = call(front, path, if_none_match=etag)
    assert (status, body, headers["ETag"]) == (304, b"", etag)
    assert django_app.calls == calls
    assert call(front, path, if_none_match='"other"')[0] == 200

    # A write to another report changes the data version, not this report's ETag.
    Signalement.objects.filter(pk=other.pk).update(title="Autre")
    status, headers, _ = call(front, path, if_none_match=etag)
    assert (status, headers["ETag"]) == (304, etag)
    assert django_app.calls == calls + 1  # recomputed once, then compared

    Signalement.objects.filter(pk=report.pk).update(title="Celui-ci")
    status, headers, body = call(front, path, if_none_match=etag)
    assert status == 200 and headers["ETag"] != etag
    assert json.loads(body)["title"] == "Celui-ci"


def test_errors_and_other_methods_are_not_stored(front, django_app):
    hidden = SignalementFactory(is_public=False)
    path = f"{LIST}{hidden.pk}/"
    calls = django_app.calls
    assert call(front, path)[0] == 404
    assert call(front, path)[0] == 404
    assert call(front, LIST, query="page=abc")[0] == 400
    assert call(front, LIST, query="page=abc")[0] == 400
    assert call(front, LIST, method="HEAD")[0] == 200
    assert call(front, LIST, method="HEAD")[0] == 200
    assert django_app.calls == calls + 6


def test_the_store_keeps_the_latest_version_within_its_size():
    store = Store(max_bytes=250)
    store.see(1)
    for number in range(3):
        store.put((1, number), Entry("200 OK", [], b"x" * 100, None))
    assert store.get((1, 0)) is None  # the least recently used, dropped
    assert store.get((1, 1)) is not None and store.get((1, 2)) is not None
    assert store.size <= 250

    store.see(2)
    assert store.entries == {} and store.size == 0
    store.put((1, 9), Entry("200 OK", [], b"late", None))  # computed under version 1
    assert store.get((1, 9)) is None
    store.put((2, 0), Entry("200 OK", [], b"y" * 300, None))  # larger than the store
    assert store.get((2, 0)) is None
    store.put((2, 1), Entry("200 OK", [], b"z", None))
    store.see(1)  # the version went back (a restored backup): nothing from before is kept
    assert store.get((2, 1)) is None and store.entries == {}


def test_django_answers_with_an_etag_and_304_for_every_caller(agent_client):
    report = SignalementFactory()
    response = agent_client.get(f"{LIST}{report.pk}/")
    etag = response["ETag"]
    again = agent_client.get(f"{LIST}{report.pk}/", HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again["ETag"] == etag
    listed = agent_client.get(LIST)
    assert agent_client.get(LIST, HTTP_IF_NONE_MATCH=listed["ETag"]).status_code == 304


def test_a_lists_count_is_made_once_per_version(front):
    """Paging through a list (one-off requests, which the store does not keep) counts
    the reports once per data version; a write makes the next page count again."""
    from django.test.utils import CaptureQueriesContext

    from signalements.models import ReportRollup

    SignalementFactory.create_batch(3)

    def page(number):
        with CaptureQueriesContext(connection) as captured:
            body = json.loads(call(front, LIST, query=f"page_size=1&page={number}")[2])
        counted = sum(
            "COUNT(" in query["sql"] or ReportRollup._meta.db_table in query["sql"]
            for query in captured.captured_queries
        )  # (the count of the maintained counters, or of the reports)
        return body["count"], counted

    assert page(1) == (3, 1)
    assert page(2) == (3, 0)
    assert page(3) == (3, 0)
    SignalementFactory()
    assert page(1) == (4, 1)
    assert page(4) == (4, 0)
    Signalement.objects.filter(pk=Signalement.objects.first().pk).update(is_public=False)
    assert page(1) == (3, 1)
