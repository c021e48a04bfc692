"""The reporter's verdict (`signalements/feedback.py`):

- `POST /api/signalements/{id}/feedback/`: the logged-in reporter of a resolved report
  says "fixed" or "not fixed" (an action of the reports' viewset, `FeedbackActions`);
- `GET|POST /api/feedback/{token}/`: the same through the signed link of the "resolved"
  email, with no login. GET shows the report and the form (in JSON, or as an HTML page
  for a browser, in the request's language) and changes nothing: mail filters open
  links; POST records;
- `GET /api/feedback/` (agents): the verdicts, `?reopen=pending` for the reopen requests
  to decide; `POST /api/feedback/{id}/accept/` and `/refuse/`.

Errors: bad input is a 400 naming the field; a link altered, expired or naming an
earlier resolution is a 404; a state that forbids the verdict or the decision is a 409
with its code (`not_resolved`, `too_late`, `already_answered`, `not_pending`)."""

import django_filters
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from drf_standardized_errors.openapi_validation_errors import extend_validation_errors
from rest_framework import exceptions, mixins, parsers, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from signalements import feedback
from signalements.idempotency import idempotent
from signalements.models import Feedback, Reopen, Signalement
from signalements.roles import agent_scope, is_owner

from ..errors import Conflict
from ..filters import StrictBooleanFilter
from ..parsers import JSONParser
from ..permissions import IsAgent
from ..schema import LINK_TOKEN, PAGINATION_ERROR_CODES, ConflictErrorSerializer, link_page
from ..serializers.feedback import (
    AgentFeedbackSerializer,
    AnswerParameter,
    DecisionSerializer,
    FeedbackLinkSerializer,
    FeedbackRequestSerializer,
    FeedbackSerializer,
)
from .base import MethodFirst
from .subscriptions import LinkView

VERDICT_CONFLICT = OpenApiResponse(
    ConflictErrorSerializer,
    description="The report's state does not take this verdict: `not_resolved` (the "
    "report is not resolved), `too_late` (more than `FEEDBACK_DAYS` after the "
    "resolution) or `already_answered` (one verdict per resolution).",
)
DECISION_CONFLICT = OpenApiResponse(
    ConflictErrorSerializer,
    description="`not_pending`: this verdict is no reopen request awaiting a decision "
    "(none was asked, or it was decided already).",
)


def refused(error: feedback.Refused) -> Conflict:
    return Conflict(str(error), code=error.code)


def invalid(error: DjangoValidationError) -> serializers.ValidationError:
    return serializers.ValidationError(serializers.as_serializer_error(error))


def record(signalement: Signalement, payload: dict, **kwargs) -> Feedback:
    """The domain's `record`, its refusals as the API's errors."""
    try:
        return feedback.record(
            signalement, payload["is_fixed"], payload.get("comment", ""), **kwargs
        )
    except feedback.Refused as error:
        raise refused(error) from None
    except DjangoValidationError as error:
        raise invalid(error) from None


class IsTheReporter(IsAuthenticated):
    """The logged-in reporter of the report, and nobody else: not even agents, whose
    opinion is not the reporter's verdict."""

    message = gettext_lazy("Only the report's reporter gives its verdict.")

    def has_object_permission(self, request, view, obj):
        return is_owner(request.user, obj)


class FeedbackActions:
    """The logged-in reporter's verdict on their resolved report. Another user gets a
    403 on a report they may see (a 404 on one they may not); an anonymous reporter
    answers through the email's link (their reporter token only lasts while the report
    is `new`)."""

    @extend_schema(
        operation_id="signalements_feedback",
        summary="Say whether a resolved report is really fixed (its reporter)",
        description="Within `FEEDBACK_DAYS` (14) of the resolution, once per resolution. "
        "`is_fixed: false` reopens the report (`in_progress`, with the comment quoted in "
        "the public note and the history's reason) or, when its category asks agents to "
        "decide, files a reopen request (`reopen: pending`).",
        request=FeedbackRequestSerializer,
        responses={201: FeedbackSerializer, 409: VERDICT_CONFLICT},
    )
    @action(
        detail=True,
        methods=["post"],
        permission_classes=[IsTheReporter],
        serializer_class=FeedbackRequestSerializer,
        pagination_class=None,
        filterset_class=None,
    )
    @idempotent
    def feedback(self, request, pk=None):
        signalement = self.get_object()
        payload = FeedbackRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        given = record(signalement, payload.validated_data, author=request.user)
        return Response(FeedbackSerializer(given).data, status=status.HTTP_201_CREATED)


ANSWER = OpenApiParameter(
    "answer",
    str,
    enum=["fixed", "not_fixed"],
    description="The choice of the email's button, chosen in advance on the page.",
)


@extend_validation_errors(["invalid_choice"], field_name="answer", methods=["get"])
class FeedbackLinkView(LinkView):
    """A verdict link: GET shows the report and the form (changes nothing), POST records
    the verdict. The body is JSON, or the page's form."""

    template_name = "signalements/feedback/link.html"
    parser_classes = [JSONParser, parsers.FormParser]

    def get_parsers(self):
        # The schema documents JSON, one request content type per operation (as every
        # other operation: generated clients get one body parameter); the page's form
        # posts the same fields, form-encoded.
        if getattr(self, "swagger_fake_view", False):
            return [JSONParser()]
        return super().get_parsers()

    def link(self, token: str) -> feedback.Link:
        try:
            return feedback.read_token(token)
        except feedback.InvalidToken as error:
            raise self.refused(error) from None

    @staticmethod
    def refused(error):
        if error.expired:
            return exceptions.NotFound(
                _("This link has expired, or the report was reopened or resolved again since.")
            )
        return exceptions.NotFound(_("This link is not valid, or its report is gone."))

    def shown(self, link: feedback.Link, *, answer=None, given=None, status_code=200):
        given = given or link.feedback
        data = {
            "reference": link.signalement.reference,
            "title": link.signalement.title,
            "resolved_at": link.resolved_at,
            "deadline": link.deadline,
            "answer": answer or None,
            "answered": given is not None,
            "is_fixed": given.is_fixed if given else None,
            "reopen": given.reopen if given else None,
        }
        return Response(
            FeedbackLinkSerializer(data).data, status=status_code, template_name=self.template_name
        )

    @extend_schema(
        operation_id="feedback_link_retrieve",
        summary="What a verdict link answers (the report, its resolution, the verdict)",
        description="Records nothing (a link previewer or a mail filter may open it): "
        "POST to the same address does. A browser gets a page with the form.",
        parameters=[LINK_TOKEN, ANSWER],
        responses=link_page(
            FeedbackLinkSerializer, "A page naming the report, with the form (or the verdict)."
        ),
    )
    def get(self, request, token):
        query = AnswerParameter(data=request.query_params)
        query.is_valid(raise_exception=True)
        return self.shown(self.link(token), answer=query.validated_data.get("answer"))

    @extend_schema(
        operation_id="feedback_link_create",
        summary="Give the verdict through the emailed link (no login)",
        description="As `POST /api/signalements/{id}/feedback/`, for the resolution the "
        "link names. The page's form may post `application/x-www-form-urlencoded`.",
        parameters=[LINK_TOKEN],
        request=FeedbackRequestSerializer,
        responses={
            **{
                (201, media): response
                for (_code, media), response in link_page(
                    FeedbackLinkSerializer, "A page thanking for the verdict."
                ).items()
            },
            409: VERDICT_CONFLICT,
        },
    )
    @idempotent
    def post(self, request, token):
        link = self.link(token)
        payload = FeedbackRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            given = feedback.record(
                link.signalement,
                payload.validated_data["is_fixed"],
                payload.validated_data["comment"],
                resolution=link.resolved_at,
            )
        except feedback.Refused as error:
            if error.code == feedback.OTHER_RESOLUTION:  # reopened since the GET
                raise self.refused(feedback.InvalidToken(expired=True)) from None
            raise refused(error) from None
        except DjangoValidationError as error:
            raise invalid(error) from None
        return self.shown(link, given=given, status_code=status.HTTP_201_CREATED)


class FeedbackFilter(django_filters.FilterSet):
    reopen = django_filters.ChoiceFilter(
        choices=[(value, label) for value, label in Reopen.choices if value],
        help_text="What the verdict did; `pending`: the reopen requests to decide.",
    )
    is_fixed = StrictBooleanFilter(help_text="The verdict: `true` (fixed) or `false`.")

    class Meta:
        model = Feedback
        fields = []


@extend_validation_errors(PAGINATION_ERROR_CODES, field_name="page", actions=["list"])
@extend_validation_errors(PAGINATION_ERROR_CODES, field_name="page_size", actions=["list"])
class FeedbackViewSet(MethodFirst, mixins.ListModelMixin, viewsets.GenericViewSet):
    """The reporters' verdicts, for agents (those of the reports in their scope), and
    the decisions on reopen requests."""

    queryset = Feedback.objects.select_related("signalement", "decided_by").order_by(
        "-created_at", "-id"
    )
    serializer_class = AgentFeedbackSerializer
    filterset_class = FeedbackFilter
    permission_classes = [IsAgent]
    lookup_value_regex = "[0-9]+"

    def get_queryset(self):
        queryset = super().get_queryset()
        scope = agent_scope(self.request.user)
        if scope is not None:
            queryset = queryset.filter(signalement__in=Signalement.objects.filter(scope))
        return queryset

    @extend_schema(summary="The reporters' verdicts (agents); `?reopen=pending`: to decide")
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def decide(self, request, decision) -> Response:
        verdict = self.get_object()
        payload = DecisionSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            decided = decision(verdict, request.user, payload.validated_data["note"])
        except feedback.Refused as error:
            raise refused(error) from None
        except DjangoValidationError as error:
            raise invalid(error) from None
        return Response(AgentFeedbackSerializer(decided).data)

    @extend_schema(
        operation_id="feedback_accept",
        summary="Accept a reopen request: the report goes back to in_progress (agents)",
        request=DecisionSerializer,
        responses={200: AgentFeedbackSerializer, 409: DECISION_CONFLICT},
    )
    @action(detail=True, methods=["post"], serializer_class=DecisionSerializer)
    @idempotent
    def accept(self, request, pk=None):
        return self.decide(request, feedback.accept)

    @extend_schema(
        operation_id="feedback_refuse",
        summary="Refuse a reopen request: the report stays resolved (agents)",
        request=DecisionSerializer,
        responses={200: AgentFeedbackSerializer, 409: DECISION_CONFLICT},
    )
    @action(detail=True, methods=["post"], serializer_class=DecisionSerializer)
    @idempotent
    def refuse(self, request, pk=None):
        return self.decide(request, feedback.refuse)
