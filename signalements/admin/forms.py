"""The report's form in the back office: its fields, its extra answers as fields of
their own (`extra.py`), and photos to add."""

from django import forms
from django.utils.translation import gettext_lazy as _

from signalements import attachments, photos
from signalements.models import Signalement

from .extra import AnswersFormMixin


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


class SignalementAdminForm(AnswersFormMixin, forms.ModelForm):
    """The report, its category's questions (one field each), plus photos to add:
    checked and re-encoded as through the API (`photos.process`), stored once the
    report is saved."""

    add_photos = MultipleFileField(
        label=_("add photos"),
        required=False,
        help_text=_("JPEG, PNG or WebP. Stored without their metadata (EXIF, GPS)."),
    )
    # The report's version when the page was opened: saving over a newer one is refused
    # (Django's admin would silently overwrite what someone else saved meanwhile).
    loaded_version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    class Meta:
        model = Signalement
        fields = []  # the admin's fieldsets name them (with its formfield overrides)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.fields["loaded_version"].initial = self.instance.version
        self.add_answer_fields()

    def clean(self):
        """Under the report's row lock (the admin saves in one transaction): the version
        the page was opened at must still be the report's."""
        cleaned = super().clean()
        self.clean_answers()
        loaded = cleaned.get("loaded_version")
        if self.instance.pk is not None and loaded is not None:
            current = (
                Signalement.objects.select_for_update()
                .filter(pk=self.instance.pk)
                .values_list("version", flat=True)
                .first()
            )
            if current is not None and current != loaded:
                raise forms.ValidationError(
                    _(
                        "Someone else changed this report since you opened this page. "
                        "Your changes were not saved: open the report again to see "
                        "theirs, then make yours again."
                    ),
                    code="stale_version",
                )
        return cleaned

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
