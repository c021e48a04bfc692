"""`GET|POST /api/contact/confirm/{token}/`: the link of a report's first email that
confirms its contact address (`signalements/contact_confirmation.py`). GET says what it
confirms, POST confirms it (a link previewer or a mail filter that opens it confirms
nothing), as a follow's link does; in JSON, or a page with the button for a browser."""

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema

from signalements import contact_confirmation
from signalements.models import Signalement

from ..schema import LINK_TOKEN, documented, link_page
from ..serializers.contact import ContactConfirmationSerializer
from .subscriptions import LinkView


def described(report: Signalement, *, confirmed: bool) -> dict:
    return {
        "reference": report.reference,
        "description": _(
            "The contact address of the report %(reference)s: its status changes and the "
            "team's updates are emailed to it once confirmed."
        )
        % {"reference": report.reference},
        "confirmed": confirmed,
    }


@documented(
    operations={
        "get": extend_schema(
            operation_id="contact_confirm_retrieve",
            summary="What a contact address's confirmation link confirms",
            description="Confirms nothing (a link previewer or a mail filter may open it): "
            "POST to the same address confirms. A browser gets a page with the button.",
            parameters=[LINK_TOKEN],
            responses=link_page(
                ContactConfirmationSerializer, "A page saying what is confirmed, with its button."
            ),
        ),
        "post": extend_schema(
            operation_id="contact_confirm_create",
            summary="Confirm a report's contact address (the link of its first email)",
            description="From then on, the report's status changes and the team's updates "
            "are emailed to the address (and to the same address for later reports). "
            "Again: nothing more. Any request body is ignored.",
            parameters=[LINK_TOKEN],
            request=None,
            responses=link_page(ContactConfirmationSerializer, "A page saying it is confirmed."),
        ),
    }
)
class ContactConfirmView(LinkView):
    """A contact address's confirmation link: GET says what it confirms, POST confirms."""

    template_name = "signalements/api/subscription_confirm.html"
    # No-store, as every emailed link's page: signalements_project/security.py.

    def get(self, request, token):
        try:
            report, confirmed = contact_confirmation.pending(token)
        except contact_confirmation.InvalidToken as error:
            raise self.refused(error) from None
        return self.page(described(report, confirmed=confirmed), ContactConfirmationSerializer)

    def post(self, request, token):
        try:
            report = contact_confirmation.confirm(token)
        except contact_confirmation.InvalidToken as error:
            raise self.refused(error) from None
        return self.page(described(report, confirmed=True), ContactConfirmationSerializer)
