"""The back office: the Django admin, one door onto the domain (`signalements/`) beside
the REST API and Open311, none of which it imports. A module per screen: the dashboard
(the home page), reports (with their workflow panel, inlines and forms), categories,
Open311 API keys, webhooks (endpoints, deliveries), subscriptions (follows and alerts).
Django's autodiscovery imports this package, which registers each `ModelAdmin` and gives
the site its titles and home page."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from .api_keys import ApiKeyAdmin
from .areas import AreaAdmin  # noqa: F401
from .categories import CategoryAdmin
from .departments import DepartmentAdmin
from .feedback import FeedbackAdmin
from .login import install as install_login
from .reply_templates import ReplyTemplateAdmin
from .reports import SignalementAdmin
from .routing import RoutingRuleAdmin
from .subscriptions import SubscriptionAdmin
from .tokens import ApiTokenAdmin
from .webhooks import WebhookDeliveryAdmin, WebhookEndpointAdmin

admin.site.site_title = _("Signalements")
admin.site.site_header = _("Signalements — back office")
admin.site.index_title = _("Dashboard")
# The screens are few (the breadcrumbs lead home): the report list keeps the width of a
# 1366 px screen for itself and its filters.
admin.site.enable_nav_sidebar = False
# No public web site to go back to: the API and its documentation are under /api/.
admin.site.site_url = "/api/docs/"
# The home page shows the dashboard above the list of screens (`dashboard.py`, through
# the `signalements_dashboard` template tag of `templatetags.py`).
admin.site.index_template = "admin/signalements/dashboard.html"
# The login page locks an account out from an address after failed logins (`login.py`).
install_login(admin.site)

__all__ = [
    "ApiKeyAdmin",
    "ApiTokenAdmin",
    "CategoryAdmin",
    "DepartmentAdmin",
    "FeedbackAdmin",
    "ReplyTemplateAdmin",
    "RoutingRuleAdmin",
    "SignalementAdmin",
    "SubscriptionAdmin",
    "WebhookDeliveryAdmin",
    "WebhookEndpointAdmin",
]
