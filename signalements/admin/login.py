"""The back office's login page, with the lockout of every door that checks a password
(`signalements/lockout.py`): after LOGIN_FAILURE_LIMIT failed logins for one account from
one address, the page refuses that account from that address for LOGIN_LOCKOUT_MINUTES
without checking the password, says so and for how long, and answers 429 with
`Retry-After`. The address is read as the API's throttles read it (`NUM_PROXIES`)."""

import functools
import math

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from rest_framework.throttling import BaseThrottle

from signalements import lockout


def client_address(request) -> str:
    return BaseThrottle().get_ident(request) or ""


class LoginForm(AdminAuthenticationForm):
    """The admin's login form. A wrong password counts towards the lockout (a right one
    for an account that may not enter the back office does not); a login forgets the
    failures."""

    locked_for: float | None = None

    def clean(self):
        username = self.cleaned_data.get("username")
        if username is None or not self.cleaned_data.get("password"):
            return super().clean()
        address = client_address(self.request)
        self.locked_for = lockout.locked_for(username=username, address=address)
        if self.locked_for is not None:
            raise ValidationError(lockout.message(self.locked_for), code="locked_out")
        try:
            cleaned_data = super().clean()
        except ValidationError:
            if self.user_cache is None:  # no such account, or not this password
                lockout.failed(username=username, address=address)
            raise
        lockout.succeeded(username=username, address=address)
        return cleaned_data


def install(site: admin.AdminSite) -> None:
    """Give `site` this login form, and its refusals of a locked-out account their 429."""
    site.login_form = LoginForm
    login = site.login

    @functools.wraps(login)
    def login_with_lockout(request, extra_context=None):
        response = login(request, extra_context)
        form = (getattr(response, "context_data", None) or {}).get("form")
        if isinstance(form, LoginForm) and form.locked_for is not None:
            response.status_code = 429
            response["Retry-After"] = str(math.ceil(form.locked_for))
        return response

    site.login = login_with_lockout
