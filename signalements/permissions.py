"""Who may do what. For now: everyone may create reports and read public ones; staff
may do everything else. (Reporters and agents come with the role model.)"""

from rest_framework import permissions


def is_staff(user) -> bool:
    return bool(user and user.is_authenticated and user.is_staff)


class SignalementPermission(permissions.BasePermission):
    """Reading and creating are open to all (anonymous creation is throttled);
    changing or deleting a report needs a staff account."""

    @staticmethod
    def allows_anonymous(method: str, view) -> bool:
        return method in permissions.SAFE_METHODS or view.action == "create"

    def has_permission(self, request, view):
        return self.allows_anonymous(request.method, view) or is_staff(request.user)


class IsStaffOrReadOnly(permissions.BasePermission):
    @staticmethod
    def allows_anonymous(method: str, view) -> bool:
        return method in permissions.SAFE_METHODS

    def has_permission(self, request, view):
        return self.allows_anonymous(request.method, view) or is_staff(request.user)
