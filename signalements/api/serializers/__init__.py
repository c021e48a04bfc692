"""The REST API's serializers, a module per resource. Import them from here."""

from .accounts import (
    ErasedContactDataSerializer,
    MeSerializer,
    TokenRequestSerializer,
    TokenSerializer,
)
from .attachments import AttachmentSerializer, AttachmentUploadSerializer
from .categories import CategorySerializer, ChoiceSerializer, ExtraFieldSerializer
from .comments import CommentSerializer
from .history import ChangeSerializer, HistoryEntrySerializer
from .reports import (
    PRIVATE_FIELDS,
    CreatedSignalementSerializer,
    PublicSignalementSerializer,
    SignalementSerializer,
    SimilarSignalementSerializer,
    TransitionSerializer,
)
from .stats import (
    CategoryCountSerializer,
    MonthCountSerializer,
    SignalementStatsSerializer,
    StatusCountSerializer,
)

__all__ = [
    "PRIVATE_FIELDS",
    "AttachmentSerializer",
    "AttachmentUploadSerializer",
    "CategoryCountSerializer",
    "CategorySerializer",
    "ChangeSerializer",
    "ChoiceSerializer",
    "CommentSerializer",
    "CreatedSignalementSerializer",
    "ErasedContactDataSerializer",
    "ExtraFieldSerializer",
    "HistoryEntrySerializer",
    "MeSerializer",
    "MonthCountSerializer",
    "PublicSignalementSerializer",
    "SignalementSerializer",
    "SignalementStatsSerializer",
    "SimilarSignalementSerializer",
    "StatusCountSerializer",
    "TokenRequestSerializer",
    "TokenSerializer",
    "TransitionSerializer",
]
