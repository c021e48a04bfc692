"""Who the caller is: the four roles of the product brief, and whether a caller filed a
given report. Every door asks these questions the same way; what each role may *do* is
each door's own (`api/permissions.py`, the admin's permissions, Open311's keys).

| role      | who                                   |
|-----------|---------------------------------------|
| anonymous | no credentials                        |
| reporter  | any logged-in user who is not an agent |
| agent     | member of the "agents" group           |
| admin     | superuser                              |
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from . import reporter_tokens
from .models import AGENTS_GROUP, Signalement


class Role(models.TextChoices):
    ANONYMOUS = "anonymous", _("Anonymous")
    REPORTER = "reporter", _("Reporter")
    AGENT = "agent", _("Agent")
    ADMIN = "admin", _("Admin")


def role_of(user) -> Role:
    """The caller's role, computed once per user object (one query at most)."""
    if user is None or not user.is_authenticated:
        return Role.ANONYMOUS
    cached = getattr(user, "_signalements_role", None)
    if cached is None:
        if user.is_superuser:
            cached = Role.ADMIN
        elif user.groups.filter(name=AGENTS_GROUP).exists():
            cached = Role.AGENT
        else:
            cached = Role.REPORTER
        user._signalements_role = cached
    return cached


def is_agent(user) -> bool:
    """Agents and admins: they read every report and triage it."""
    return role_of(user) in (Role.AGENT, Role.ADMIN)


def is_admin(user) -> bool:
    return role_of(user) == Role.ADMIN


def is_owner(user, signalement: Signalement) -> bool:
    return bool(user and user.is_authenticated and signalement.reporter_id == user.pk)


def acts_as_reporter(request, signalement: Signalement) -> bool:
    """The caller filed this report: logged in as its reporter, or holding the valid
    reporter token of a report filed anonymously (see `reporter_tokens.py`)."""
    if request is None:
        return False
    return is_owner(request.user, signalement) or (
        reporter_tokens.presented(request) is not None
        and reporter_tokens.signalement_id(request) == signalement.pk
    )


def department_ids(user) -> list[int]:
    """The departments the user belongs to, by id (one query per user object)."""
    cached = getattr(user, "_signalements_departments", None)
    if cached is None:
        cached = user._signalements_departments = list(
            user.departments.values_list("pk", flat=True)
        )
    return cached


def agent_scope(user) -> Q | None:
    """The reports an agent may see and triage, as a filter; None when it is every report.

    With `AGENT_SCOPE=department`, an agent sees the reports of their departments, those
    assigned to them, and those that no department handles yet (no report is left where
    nobody sees it); superusers see all. With `AGENT_SCOPE=all` (the default) every agent
    sees every report. Every door applies it: the API's reports, export and statistics,
    and the admin."""
    if settings.SIGNALEMENT_AGENT_SCOPE != "department" or role_of(user) != Role.AGENT:
        return None
    return (
        Q(department_id__in=department_ids(user))
        | Q(department__isnull=True)
        | Q(assigned_to_id=user.pk)
    )
