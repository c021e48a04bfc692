"""Who may do what: the four roles of the product brief.

| role      | who                                   |
|-----------|---------------------------------------|
| anonymous | no credentials                        |
| reporter  | any logged-in user who is not an agent |
| agent     | member of the "agents" group           |
| admin     | superuser                              |

Visibility (which reports exist for the caller) is applied in the views' querysets: a
report the caller may not see is a 404. These classes decide what a caller may *do*.
"""

from django.db import models
from rest_framework import permissions

from .models import AGENTS_GROUP, Signalement, Status


class Role(models.TextChoices):
    ANONYMOUS = "anonymous", "Anonymous"
    REPORTER = "reporter", "Reporter"
    AGENT = "agent", "Agent"
    ADMIN = "admin", "Admin"


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


class SignalementPermission(permissions.BasePermission):
    """Anyone reads (what they may see) and creates. A reporter edits their own report
    while it is `new`; agents edit any report; only admins delete."""

    @staticmethod
    def allows_anonymous(method: str, view) -> bool:
        return method in permissions.SAFE_METHODS or view.action == "create"

    def has_permission(self, request, view):
        return self.allows_anonymous(request.method, view) or request.user.is_authenticated

    def has_object_permission(self, request, view, obj):
        if request.method in permissions.SAFE_METHODS:
            return True
        if request.method == "DELETE":
            return is_admin(request.user)
        if is_agent(request.user):
            return True
        return is_owner(request.user, obj) and obj.status == Status.NEW


class CommentPermission(permissions.BasePermission):
    """Anyone reads the comments of a report they can see; its reporter (at any status)
    and agents write them. Internal notes are for agents: checked by the view."""

    @staticmethod
    def allows_anonymous(method: str, view) -> bool:
        return method in permissions.SAFE_METHODS

    def has_permission(self, request, view):
        return self.allows_anonymous(request.method, view) or request.user.is_authenticated

    def has_object_permission(self, request, view, obj):
        return (
            request.method in permissions.SAFE_METHODS
            or is_agent(request.user)
            or is_owner(request.user, obj)
        )


class IsAgent(permissions.BasePermission):
    def has_permission(self, request, view):
        return is_agent(request.user)


class IsAdminOrReadOnly(permissions.BasePermission):
    """Everyone reads; admins (superusers) manage. Used for categories."""

    @staticmethod
    def allows_anonymous(method: str, view) -> bool:
        return method in permissions.SAFE_METHODS

    def has_permission(self, request, view):
        return self.allows_anonymous(request.method, view) or is_admin(request.user)
