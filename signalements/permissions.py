"""Who may do what. For now: everyone may create reports and read public ones; staff
may do everything else. (Reporters and agents come with the role model.)"""

from rest_framework import permissions


def is_staff(user) -> bool:
    return bool(user and user.is_authenticated and user.is_staff)


class SignalementPermission(permissions.BasePermission):
    """Reading and creating are open to all (anonymous creation is throttled);
    changing or deleting a report needs a staff account."""

    def has_permission(self, request, view):
        if request.method in permissions.SAFE_METHODS or view.action == "create":
            return True
        return is_staff(request.user)


class IsStaffOrReadOnly(permissions.BasePermission):
    def has_permission(self, request, view):
        return request.method in permissions.SAFE_METHODS or is_staff(request.user)
