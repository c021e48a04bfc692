"""What each role may do through the REST API (the roles are `signalements/roles.py`).

Visibility (which reports exist for the caller) is applied in the views' querysets: a
report the caller may not see is a 404. These classes decide what a caller may *do*.
"""

from django.utils.translation import gettext as _
from rest_framework import exceptions, permissions

from signalements import reporter_tokens
from signalements.models import Signalement, Status
from signalements.roles import acts_as_reporter, is_admin, is_agent, is_owner


def holds_reporter_token(request) -> bool:
    """Whether an anonymous caller presents a valid reporter token (see
    `reporter_tokens.py`). One that is not valid (unknown, expired, or its report no
    longer `new`) is refused as a failed authentication: a 401."""
    if request.user.is_authenticated or reporter_tokens.presented(request) is None:
        return False
    if reporter_tokens.signalement_id(request) is None:
        raise exceptions.AuthenticationFailed(
            _("Invalid reporter token: unknown, expired, or its report is no longer new."),
            code="authentication_failed",
        )
    return True


def may_edit_new_report(request, signalement: Signalement) -> bool:
    """What reporters may do to their report while it is `new`, agents at any time.

    Refused to an anonymous caller with a reporter token for another report: a 403
    (DRF would make any refusal of an unauthenticated caller a 401)."""
    if is_agent(request.user) or (
        signalement.status == Status.NEW and acts_as_reporter(request, signalement)
    ):
        return True
    if holds_reporter_token(request):
        raise exceptions.PermissionDenied(_("Your reporter token is for another report."))
    return False


class SignalementPermission(permissions.BasePermission):
    """Anyone reads (what they may see) and creates. A reporter edits their own report
    while it is `new` (an anonymous one with their reporter token); agents edit any
    report; only admins delete."""

    @staticmethod
    def allows_anonymous(method: str, view) -> bool:
        return method in permissions.SAFE_METHODS or view.action == "create"

    @staticmethod
    def allows_reporter_token(method: str, view) -> bool:
        return view.action in ("update", "partial_update")

    def has_permission(self, request, view):
        return (
            self.allows_anonymous(request.method, view)
            or request.user.is_authenticated
            or (self.allows_reporter_token(request.method, view) and holds_reporter_token(request))
        )

    def has_object_permission(self, request, view, obj):
        if request.method in permissions.SAFE_METHODS:
            return True
        if request.method == "DELETE":
            return is_admin(request.user)
        return may_edit_new_report(request, obj)


class AttachmentPermission(permissions.BasePermission):
    """Anyone sees the photos of a report they can see. Agents add and remove photos at
    any time; its reporter (an anonymous one with their reporter token) while it is
    `new`."""

    @staticmethod
    def allows_anonymous(method: str, view) -> bool:
        return method in permissions.SAFE_METHODS

    @staticmethod
    def allows_reporter_token(method: str, view) -> bool:
        return method not in permissions.SAFE_METHODS

    def has_permission(self, request, view):
        return (
            self.allows_anonymous(request.method, view)
            or request.user.is_authenticated
            or holds_reporter_token(request)
        )

    def has_object_permission(self, request, view, obj):
        return request.method in permissions.SAFE_METHODS or may_edit_new_report(request, obj)


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
    """Everyone reads; admins (superusers) manage. Used for categories, departments, areas
    and service levels."""

    @staticmethod
    def allows_anonymous(method: str, view) -> bool:
        return method in permissions.SAFE_METHODS

    def has_permission(self, request, view):
        return self.allows_anonymous(request.method, view) or is_admin(request.user)


class IsAdmin(permissions.BasePermission):
    """Admins (superusers) only. Used for webhook endpoints."""

    def has_permission(self, request, view):
        return is_admin(request.user)


class AgentsReadAdminsWrite(permissions.BasePermission):
    """Agents read; admins (superusers) manage. Used for routing rules and reply
    templates."""

    def has_permission(self, request, view):
        if request.method in permissions.SAFE_METHODS:
            return is_agent(request.user)
        return is_admin(request.user)
