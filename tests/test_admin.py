"""The back office loads, searches and changes statuses through the workflow."""

import pytest
from django.urls import reverse
from django.utils import timezone

from signalements.models import Signalement

from . import images
from .factories import CategoryFactory, SignalementFactory, UserFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:signalements_signalement_changelist")
# Empty management forms of the change page's inlines (photos, comments, duplicates).
NO_INLINES = {
    f"{prefix}-{name}": value
    for prefix in ("attachments", "comments", "duplicates")
    for name, value in [("TOTAL_FORMS", "0"), ("INITIAL_FORMS", "0"), ("MAX_NUM_FORMS", "1000")]
}


def form_date(report) -> dict:
    """The report's own date as the admin's date and time fields show it (local time):
    never in the future, whatever the hour the tests run at."""
    local = timezone.localtime(report.date)
    return {"date_0": local.strftime("%Y-%m-%d"), "date_1": local.strftime("%H:%M:%S")}


def change_form(report, **fields) -> dict:
    """The report's change form as a browser posts it, no inline changed; `fields`
    override or add values."""
    return {
        "title": "",
        "description": report.description,
        **form_date(report),
        "priority": "normal",
        "latitude": "",
        "longitude": "",
        **NO_INLINES,
        **fields,
    }


def test_the_changelist_loads_with_a_bounded_number_of_queries(
    admin_client, django_assert_max_num_queries
):
    SignalementFactory.create_batch(40)

    with django_assert_max_num_queries(12):
        response = admin_client.get(CHANGELIST)

    assert response.status_code == 200
    assert "SIG-" in response.content.decode()


def test_the_changelist_filters_and_date_hierarchy_work(admin_client):
    report = SignalementFactory(status="new", priority="urgent")

    for query in [
        "status__exact=new",
        "priority__exact=urgent",
        f"category__id__exact={report.category_id}",
        f"created_at__year={report.created_at.year}",
    ]:
        response = admin_client.get(f"{CHANGELIST}?{query}")
        assert response.status_code == 200, query
        assert report.reference in response.content.decode()


def test_searching_by_reference_finds_the_report(admin_client):
    wanted, other = SignalementFactory(), SignalementFactory()

    response = admin_client.get(CHANGELIST, {"q": wanted.reference})

    content = response.content.decode()
    assert wanted.reference in content
    assert other.reference not in content


def test_searching_by_text_finds_the_report(admin_client):
    SignalementFactory(description="Fuite d'eau rue de Nantes")
    SignalementFactory(description="Lampadaire")

    response = admin_client.get(CHANGELIST, {"q": "fuite"})

    assert response.context["cl"].result_count == 1


def test_the_change_page_loads_and_saves(admin_client):
    report = SignalementFactory()
    url = reverse("admin:signalements_signalement_change", args=[report.pk])

    assert admin_client.get(url).status_code == 200
    response = admin_client.post(
        url,
        {
            "title": "Nouveau titre",
            "description": report.description,
            **form_date(report),
            "category": report.category_id,
            "priority": "high",
            "is_public": "on",
            "latitude": "48.1",
            "longitude": "-1.6",
            "address": "",
            "contact_name": "",
            "contact_email": "",
            "contact_phone": "",
            **NO_INLINES,
        },
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    report.refresh_from_db()
    assert (report.title, report.priority, report.status) == ("Nouveau titre", "high", "new")


def test_the_change_form_refuses_to_save_over_a_newer_version(admin_client):
    """Two agents open the same report; the second to save is told, and nothing of
    theirs is written over the first one's change."""
    report = SignalementFactory(title="Avant")
    url = reverse("admin:signalements_signalement_change", args=[report.pk])
    page = admin_client.get(url)
    loaded = page.context["adminform"].form["loaded_version"].value()
    assert loaded == 1
    assert 'name="loaded_version"' in page.content.decode()
    Signalement.objects.filter(pk=report.pk).update(title="Changé par quelqu'un d'autre")
    form = change_form(
        report, title="Mon titre", priority="high", is_public="on", loaded_version=loaded
    )
    refused = admin_client.post(url, form)
    assert refused.status_code == 200
    errors = refused.context["adminform"].form.non_field_errors()
    # In French, the admin's default language.
    assert any("a modifié ce signalement" in error for error in errors)
    assert "a modifié ce signalement" in refused.content.decode()
    report.refresh_from_db()
    assert (report.title, report.priority) == ("Changé par quelqu'un d'autre", "normal")
    # Opened again, it saves.
    form["loaded_version"] = (
        admin_client.get(url).context["adminform"].form["loaded_version"].value()
    )
    assert admin_client.post(url, form).status_code == 302
    report.refresh_from_db()
    assert report.title == "Mon titre"


def test_the_admin_form_applies_the_model_rules(admin_client):
    report = SignalementFactory()
    url = reverse("admin:signalements_signalement_change", args=[report.pk])

    response = admin_client.post(
        url,
        {
            "description": "x",
            "date_0": "2025-01-01",
            "date_1": "08:00:00",
            "priority": "normal",
            "latitude": "48.1",
            "longitude": "",
            **NO_INLINES,
        },
    )

    assert response.status_code == 200
    assert "longitude" in response.context["adminform"].form.errors


def test_the_add_page_and_category_pages_load(admin_client):
    CategoryFactory()

    assert admin_client.get(reverse("admin:signalements_signalement_add")).status_code == 200
    assert admin_client.get(reverse("admin:signalements_category_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:signalements_category_add")).status_code == 200


def test_a_bulk_action_moves_reports_through_the_workflow(admin_client):
    new_one, new_two = SignalementFactory(status="new"), SignalementFactory(status="new")
    resolved = SignalementFactory(status="resolved")

    response = admin_client.post(
        CHANGELIST,
        {"action": "mark_acknowledged", "_selected_action": [new_one.pk, new_two.pk, resolved.pk]},
        follow=True,
    )

    assert response.status_code == 200
    statuses = dict(Signalement.objects.values_list("pk", "status"))
    assert statuses == {
        new_one.pk: "acknowledged",
        new_two.pk: "acknowledged",
        resolved.pk: "resolved",
    }
    messages = [str(m) for m in response.context["messages"]]
    assert any("2 signalements passés au statut" in m for m in messages)
    assert any(resolved.reference in m for m in messages)


def test_resolving_in_bulk_sets_resolved_at(admin_client):
    report = SignalementFactory(status="in_progress")

    admin_client.post(CHANGELIST, {"action": "mark_resolved", "_selected_action": [report.pk]})

    report.refresh_from_db()
    assert report.status == "resolved"
    assert report.resolved_at is not None


def test_an_agent_works_in_the_admin_with_the_groups_permissions(client, agent_user):
    report = SignalementFactory(status="new")
    client.force_login(agent_user)

    assert client.get(CHANGELIST).status_code == 200
    assert (
        client.get(reverse("admin:signalements_signalement_change", args=[report.pk])).status_code
        == 200
    )
    client.post(CHANGELIST, {"action": "mark_acknowledged", "_selected_action": [report.pk]})

    report.refresh_from_db()
    assert report.status == "acknowledged"
    # Deleting and managing categories stay with admins.
    assert (
        client.get(reverse("admin:signalements_signalement_delete", args=[report.pk])).status_code
        == 403
    )
    assert client.get(reverse("admin:signalements_category_add")).status_code == 403


def _report_with_photos(agent_client, count=2):
    from .test_attachments import upload

    report = SignalementFactory()
    for _ in range(count):
        assert upload(agent_client, report.pk, ("a.jpg", images.jpeg_with_gps())).status_code == 201
    return report


def test_the_change_page_shows_the_photos_as_thumbnails(client, agent_user, agent_client):
    """To an agent (the group's permissions, not a superuser's)."""
    report = _report_with_photos(agent_client)
    url = reverse("admin:signalements_signalement_change", args=[report.pk])
    client.force_login(agent_user)

    page = client.get(url).content.decode()

    for photo in report.attachments.all():
        assert f'<img src="{photo.thumbnail.url}"' in page
        assert f'href="{photo.file.url}"' in page
    assert "64 × 48" in page


def test_the_changelist_shows_a_thumbnail(admin_client, agent_client):
    report = _report_with_photos(agent_client, count=1)
    page = admin_client.get(CHANGELIST).content.decode()
    assert f'<img src="{report.attachments.get().thumbnail.url}"' in page


def test_deleting_a_photo_in_the_admin_deletes_its_files(
    client, agent_user, agent_client, django_capture_on_commit_callbacks
):
    from django.core.files.storage import default_storage

    report = _report_with_photos(agent_client)
    doomed, kept = report.attachments.all()
    url = reverse("admin:signalements_signalement_change", args=[report.pk])
    form = _change_form(
        report,
        **{
            "attachments-TOTAL_FORMS": "2",
            "attachments-INITIAL_FORMS": "2",
            "attachments-0-id": str(doomed.pk),
            "attachments-0-signalement": str(report.pk),
            "attachments-0-DELETE": "on",
            "attachments-1-id": str(kept.pk),
            "attachments-1-signalement": str(report.pk),
        },
    )

    client.force_login(agent_user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, form)

    assert response.status_code == 302
    assert list(report.attachments.all()) == [kept]
    assert not default_storage.exists(doomed.file.name)
    assert not default_storage.exists(doomed.thumbnail.name)
    assert default_storage.exists(kept.file.name)


def _change_form(report, **extra):
    return {
        "title": report.title,
        "description": report.description,
        **form_date(report),
        "category": report.category_id,
        "priority": "normal",
        "is_public": "on",
        "latitude": "48.1",
        "longitude": "-1.6",
        **NO_INLINES,
        **extra,
    }


def test_an_agent_adds_photos_in_the_admin_without_their_metadata(client, agent_user):
    from django.core.files.storage import default_storage
    from django.core.files.uploadedfile import SimpleUploadedFile

    from .test_attachments import assert_no_metadata

    client.force_login(agent_user)
    report = SignalementFactory()
    url = reverse("admin:signalements_signalement_change", args=[report.pk])
    assert 'name="add_photos"' in client.get(url).content.decode()

    response = client.post(
        url,
        _change_form(
            report,
            add_photos=[
                SimpleUploadedFile("a.jpg", images.jpeg_with_gps()),
                SimpleUploadedFile("b.png", images.png_with_text()),
            ],
        ),
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    added = list(report.attachments.all())
    assert [photo.content_type for photo in added] == ["image/jpeg", "image/png"]
    assert all(photo.uploaded_by == agent_user for photo in added)
    with default_storage.open(added[0].file.name) as stored:
        assert_no_metadata(stored.read())


def test_a_bad_photo_in_the_admin_is_an_error_naming_it(admin_client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    report = SignalementFactory()
    url = reverse("admin:signalements_signalement_change", args=[report.pk])

    response = admin_client.post(
        url,
        _change_form(
            report,
            title="Changed",
            add_photos=[
                SimpleUploadedFile("a.jpg", images.jpeg_with_gps()),
                SimpleUploadedFile("page.jpg", images.HTML),
            ],
        ),
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["add_photos"]
    assert errors == ["page.jpg: Le fichier n’est pas une image JPEG, PNG ou WebP."]
    assert not report.attachments.exists()
    report.refresh_from_db()
    assert report.title != "Changed"  # nothing saved


def test_the_admin_keeps_the_photo_limit(admin_client, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.SIGNALEMENT_MAX_ATTACHMENTS = 1
    report = SignalementFactory()
    url = reverse("admin:signalements_signalement_change", args=[report.pk])
    files = [SimpleUploadedFile(f"{n}.jpg", images.jpeg_with_gps()) for n in range(2)]

    response = admin_client.post(url, _change_form(report, add_photos=files))

    assert response.status_code == 200
    assert "au plus 1 photo\u00a0:" in str(response.context["adminform"].form.errors["add_photos"])
    assert not report.attachments.exists()


def test_an_agent_cannot_set_who_filed_a_report(client, agent_user):
    """Found by a security audit: an agent set a hidden report's `reporter`, then that
    user read its contact data through the API."""
    accomplice = UserFactory()
    report = SignalementFactory(is_public=False, contact_email="lea@example.org")
    client.force_login(agent_user)
    url = reverse("admin:signalements_signalement_change", args=[report.pk])
    page = client.get(url)
    assert "reporter" not in page.context["adminform"].form.fields
    response = client.post(
        url, change_form(report, reporter=accomplice.pk, contact_email="lea@example.org")
    )
    assert response.status_code == 302
    report.refresh_from_db()
    assert report.reporter_id is None


def test_the_history_cannot_revert_a_report_past_the_workflow(admin_client):
    """Found by a security audit: "Revert" put a resolved report back to `new`, which
    re-enabled its anonymous reporter's token."""
    from django.conf import settings

    report = SignalementFactory(status="new")
    report.status = "acknowledged"
    report.save()
    first = report.history.earliest()
    url = reverse(
        "admin:signalements_signalement_simple_history",
        args=[report.pk, first.history_id],
    )
    assert settings.SIMPLE_HISTORY_REVERT_DISABLED
    response = admin_client.post(url, change_form(report))
    assert response.status_code == 403
    report.refresh_from_db()
    assert report.status == "acknowledged"
    # The past version is still shown.
    assert admin_client.get(url).status_code == 200


# --- Departments, areas and due dates ----------------------------------------------------


def _due_in(report, delta, **fields):
    from django.utils import timezone

    Signalement.objects.filter(pk=report.pk).update(due_at=timezone.now() + delta, **fields)


def test_the_list_shows_due_dates_in_colour(admin_client):
    from datetime import timedelta

    late, soon, later, closed = (SignalementFactory(status=s) for s in ["new"] * 3 + ["resolved"])
    _due_in(late, -timedelta(hours=1))
    _due_in(soon, timedelta(hours=5))
    _due_in(later, timedelta(days=3))
    _due_in(closed, -timedelta(days=3))
    undated = SignalementFactory()
    Signalement.objects.filter(pk=undated.pk).update(due_at=None)

    page = admin_client.get(CHANGELIST)

    html = page.content.decode()
    assert html.count('class="sig-due sig-due-overdue"') == 1
    assert html.count('class="sig-due sig-due-soon"') == 1
    admin = page.context["cl"].model_admin
    assert "sig-due-overdue" in admin.due(Signalement.objects.get(pk=late.pk))
    assert "sig-due-soon" in admin.due(Signalement.objects.get(pk=soon.pk))
    for plain in (later, closed):  # a closed report's deadline is over: no colour
        assert "sig-due" not in admin.due(Signalement.objects.get(pk=plain.pk))
    assert admin.due(Signalement.objects.get(pk=undated.pk)) == "—"


def test_the_list_filters_by_overdue_department_and_area(admin_client):
    from datetime import timedelta

    from signalements.models import Area, Department

    Area.objects.create(
        code="centre",
        name="Centre",
        kind="district",
        geometry={
            "type": "Polygon",
            "coordinates": [
                [[-1.70, 48.10], [-1.66, 48.10], [-1.66, 48.12], [-1.70, 48.12], [-1.70, 48.10]]
            ],
        },
    )
    roads = Department.objects.create(code="voirie", name="Voirie")
    inside_late = SignalementFactory(status="new")  # at 48.111, -1.68: in the centre
    outside = SignalementFactory(latitude=None, longitude=None)
    resolved_late = SignalementFactory(status="resolved")
    _due_in(inside_late, -timedelta(days=1), department=roads)
    _due_in(outside, timedelta(days=1))
    _due_in(resolved_late, -timedelta(days=1))
    area = Area.objects.get(code="centre")

    def listed(**params):
        page = admin_client.get(CHANGELIST, params)
        assert page.status_code == 200, params
        return {report.pk for report in page.context["cl"].result_list}

    assert listed(overdue="yes") == {inside_late.pk}
    assert listed(overdue="no") == {outside.pk, resolved_late.pk}
    assert listed(department__id__exact=roads.pk) == {inside_late.pk}
    assert listed(areas__id__exact=area.pk) == {inside_late.pk, resolved_late.pk}


def test_an_agent_sets_the_department_and_keeps_the_routing_in_the_form(client, agent_user):
    from signalements.models import Area, Department

    lighting = Department.objects.create(code="eclairage", name="Éclairage")
    old = Department.objects.create(code="ancien", name="Ancien service")
    Area.objects.create(
        code="centre",
        name="Centre",
        kind="district",
        geometry={
            "type": "Polygon",
            "coordinates": [
                [[-1.70, 48.10], [-1.66, 48.10], [-1.66, 48.12], [-1.70, 48.12], [-1.70, 48.10]]
            ],
        },
    )
    report = SignalementFactory(status="new")
    Signalement.objects.filter(pk=report.pk).update(department=old)
    old.is_active = False
    old.save()
    client.force_login(agent_user)
    url = reverse("admin:signalements_signalement_change", args=[report.pk])

    page = client.get(url)

    form = page.context["adminform"].form
    assert {"department", "keep_routing"} <= set(form.fields)
    assert not {"due_at", "area_names"} & set(form.fields)  # read only: shown, not edited
    # Active departments, and the report's own even though no longer active.
    assert set(form.fields["department"].queryset) == {lighting, old}
    html = page.content.decode()
    assert "Centre" in html and "field-due_at" in html

    saved = client.post(url, change_form(report, department=old.pk))  # unchanged: accepted
    assert saved.status_code == 302
    response = client.post(url, change_form(report, department=lighting.pk, keep_routing="on"))

    assert response.status_code == 302, response.context["adminform"].form.errors
    report.refresh_from_db()
    assert (report.department, report.keep_routing) == (lighting, True)
    assert report.history.latest().history_user == agent_user


def test_agents_limited_to_their_departments_do_not_find_the_others_reports(
    client, agent_user, settings
):
    from signalements.models import Department

    settings.SIGNALEMENT_AGENT_SCOPE = "department"
    lighting = Department.objects.create(code="eclairage", name="Éclairage")
    roads = Department.objects.create(code="voirie", name="Voirie")
    lighting.members.add(agent_user)
    mine, theirs, unrouted, assigned = SignalementFactory.create_batch(4, status="new")
    Signalement.objects.filter(pk=mine.pk).update(department=lighting)
    Signalement.objects.filter(pk__in=[theirs.pk, assigned.pk]).update(department=roads)
    Signalement.objects.filter(pk=assigned.pk).update(assigned_to=agent_user)
    client.force_login(agent_user)

    listed = client.get(CHANGELIST).context["cl"].result_list

    assert {report.pk for report in listed} == {mine.pk, unrouted.pk, assigned.pk}
    hidden = client.get(reverse("admin:signalements_signalement_change", args=[theirs.pk]))
    assert hidden.status_code == 302  # the admin's "does not exist" redirect
    assert hidden["Location"] == reverse("admin:index")
    moved = client.post(
        reverse("admin:signalements_signalement_transition", args=[theirs.pk]),
        {"to_status": "acknowledged", "note": ""},
    )
    assert moved.status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == "new"
    # Superusers see every report.
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    assert client.get(CHANGELIST).context["cl"].result_count == 4


def test_the_dashboard_counts_by_department_with_links_and_rates(client, agent_user):
    from datetime import timedelta

    from django.utils import timezone

    from signalements.models import Department, Feedback

    lighting = Department.objects.create(code="eclairage", name="Éclairage")
    late, on_time_report, open_late, open_soon = SignalementFactory.create_batch(4)
    now = timezone.now()
    Signalement.objects.filter(pk=late.pk).update(
        status="resolved", resolved_at=now - timedelta(days=1), due_at=now - timedelta(days=2)
    )
    Signalement.objects.filter(pk=on_time_report.pk).update(
        status="resolved", resolved_at=now - timedelta(days=3), due_at=now - timedelta(days=2)
    )
    Signalement.objects.filter(pk__in=[late.pk, on_time_report.pk, open_late.pk]).update(
        department=lighting
    )
    _due_in(open_late, -timedelta(hours=2))
    _due_in(open_soon, timedelta(hours=2))
    for days, is_fixed in [(1, True), (5, True), (9, False)]:  # three resolutions answered
        Feedback.objects.create(
            signalement=late, resolved_at=now - timedelta(days=days), is_fixed=is_fixed
        )
    client.force_login(agent_user)

    page = client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="en")

    dashboard = page.context["dashboard"]
    assert dashboard["backlog"]["overdue"] == 1
    assert (dashboard["on_time_percent"], dashboard["satisfaction_percent"]) == (50, 67)
    rows = {row["department"]: row for row in dashboard["by_department"]}
    assert (rows["eclairage"]["open"], rows["eclairage"]["overdue"]) == (1, 1)
    assert (rows[None]["open"], rows[None]["overdue"]) == (1, 0)
    for row in rows.values():
        for figure in ("open", "overdue"):
            listed = client.get(row[f"{figure}_url"])
            assert listed.context["cl"].result_count == row[figure], row[f"{figure}_url"]
    assert client.get(dashboard["overdue_url"]).context["cl"].result_count == 1
    html = page.content.decode()
    assert 'id="dashboard-department"' in html
    assert "50 %" in html and "67 %" in html
