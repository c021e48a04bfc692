"""The report's form in the back office: its fields, and photos to add."""

from django import forms
from django.utils.translation import gettext_lazy as _

from signalements import attachments, photos
from signalements.models import Signalement


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one input (Django's documented pattern)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        if isinstance(data, list | tuple):
            return [super(MultipleFileField, self).clean(item, initial) for item in data]
        return [super().clean(data, initial)] if data else []


class SignalementAdminForm(forms.ModelForm):
    """The report, plus photos to add: checked and re-encoded as through the API
    (`photos.process`), stored once the report is saved."""

    add_photos = MultipleFileField(
        label=_("add photos"),
        required=False,
        help_text=_("JPEG, PNG or WebP. Stored without their metadata (EXIF, GPS)."),
    )

    class Meta:
        model = Signalement
        fields = []  # the admin's fieldsets name them (with its formfield overrides)

    def clean_add_photos(self):
        uploads = self.cleaned_data.get("add_photos") or []
        try:
            attachments.check_room(self.instance, len(uploads))
            return photos.process_all(uploads)
        except attachments.TooManyPhotos as refused:
            raise forms.ValidationError(str(refused), code="too_many_photos") from None
        except photos.RejectedFiles as refused:
            raise forms.ValidationError(
                [
                    forms.ValidationError(problem.message, code=problem.code)
                    for problem in refused.problems.values()
                ]
            ) from None
