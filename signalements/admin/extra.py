"""Extra fields in the back office as forms, not JSON: a report's answers as one form
field per question of its category (with its label, type and choices), and a question's
choices as rows of key and label. The rules stay those of `signalements/extra.py`,
applied again by the model's `clean()`."""

from django import forms
from django.contrib.admin import widgets as admin_widgets
from django.core.exceptions import NON_FIELD_ERRORS
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from signalements.extra import STRING_MAX_LENGTH, TEXT_MAX_LENGTH, Datatype, check_extra
from signalements.models import Category

PREFIX = "extra__"


def form_field(question) -> forms.Field:
    """The form field answering one extra field (`question`)."""
    options = {
        "label": question.label,
        "required": question.required,
        "help_text": question.description,
    }
    choices = [(choice["key"], choice["label"]) for choice in question.choices or []]
    match question.datatype:
        case Datatype.TEXT:
            return forms.CharField(
                max_length=TEXT_MAX_LENGTH, widget=forms.Textarea(attrs={"rows": 3}), **options
            )
        case Datatype.NUMBER:
            return forms.FloatField(**options)
        case Datatype.DATETIME:
            return forms.SplitDateTimeField(widget=admin_widgets.AdminSplitDateTime, **options)
        case Datatype.SINGLEVALUELIST:
            return forms.ChoiceField(choices=[("", "---------"), *choices], **options)
        case Datatype.MULTIVALUELIST:
            return forms.MultipleChoiceField(
                choices=choices, widget=forms.CheckboxSelectMultiple, **options
            )
    return forms.CharField(max_length=STRING_MAX_LENGTH, **options)


def stored_value(question, value):
    """A form field's cleaned value as the report's `extra` stores it."""
    if value in (None, "", []):
        return None
    if question.datatype == Datatype.NUMBER and float(value).is_integer():
        return int(value)
    if question.datatype == Datatype.DATETIME:
        return (
            timezone.localtime(value).isoformat() if timezone.is_aware(value) else value.isoformat()
        )
    return value


def initial_value(question, value):
    """A stored answer as its form field shows it."""
    if question.datatype == Datatype.DATETIME and isinstance(value, str):
        parsed = forms.DateTimeField().to_python(value)
        return timezone.localtime(parsed) if parsed and timezone.is_aware(parsed) else parsed
    return value


def answers_category(posted: str | None, report) -> Category | None:
    """The category whose questions a report's form asks: the one `posted` (the form's
    `category` value, None when nothing was posted), so that changing it asks the new
    category's questions; else the report's own (`report` may be None: a new one)."""
    if posted is not None:
        try:
            return Category.objects.filter(pk=int(posted)).first() if posted else None
        except (TypeError, ValueError):
            return None
    return report.category if report is not None and report.category_id else None


class AnswersFormMixin:
    """For the report's ModelForm: one field per question of the report's category
    (the category posted, when the form is bound, so that changing it shows its own
    questions again). `answers_fields` names them for the admin's fieldset; `clean()`
    puts the answers into `instance.extra`."""

    def add_answer_fields(self) -> None:
        self.questions = {}
        category = self._answers_category()
        if category is None:
            return
        extra = self.instance.extra if isinstance(self.instance.extra, dict) else {}
        for question in category.extra_fields.all():
            name = PREFIX + question.code
            self.fields[name] = form_field(question)
            if question.code in extra and not self.is_bound:
                self.initial[name] = initial_value(question, extra[question.code])
            self.questions[name] = question

    def _answers_category(self) -> Category | None:
        posted = (
            self.data.get(self.add_prefix("category"), "")
            if self.is_bound and "category" in self.fields
            else None
        )
        return answers_category(posted, self.instance)

    def clean_answers(self) -> None:
        if "category" in self.fields and not self.questions:
            # No category, or one without questions: no answers.
            self.instance.extra = {}
            return
        if not self.questions:
            return
        answers = {}
        for name, question in self.questions.items():
            if name in self.errors:
                continue
            value = stored_value(question, self.cleaned_data.get(name))
            if value is not None:
                answers[question.code] = value
        cleaned, problems = check_extra(self.questions.values(), answers)
        for code, problem in problems.items():
            name = PREFIX + code if code else None
            if name is None or name in self.fields:
                self.add_error(name, problem)
        self.instance.extra = cleaned

    def _update_errors(self, errors):
        """The model's `clean()` checks `extra` again: its problems are already on the
        answers' own fields, or (when the form shows no such error) go on top of the
        form, not to a field the form does not have."""
        extra = getattr(errors, "error_dict", {}).pop("extra", None)
        if extra and not any(name.startswith(PREFIX) for name in self.errors):
            errors.error_dict.setdefault(NON_FIELD_ERRORS, []).extend(extra)
        if getattr(errors, "error_dict", None) == {}:
            return
        super()._update_errors(errors)


class ChoiceRowsWidget(forms.Widget):
    """A list of {"key", "label"} as rows of two inputs, plus empty rows to add more."""

    template_name = "admin/signalements/widgets/choice_rows.html"
    empty_rows = 3

    def format_value(self, value):
        if isinstance(value, str):
            value = forms.JSONField().to_python(value) if value else []
        return [row for row in value or [] if isinstance(row, dict)]

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        rows = [
            {"key": row.get("key", ""), "label": row.get("label", "")}
            for row in self.format_value(value)
        ]
        context["rows"] = rows + [{"key": "", "label": ""}] * self.empty_rows
        return context

    def value_from_datadict(self, data, files, name):
        keys = data.getlist(f"{name}-key") if hasattr(data, "getlist") else []
        labels = data.getlist(f"{name}-label") if hasattr(data, "getlist") else []
        rows = []
        for key, label in zip(keys, labels, strict=False):
            key, label = key.strip(), label.strip()
            if key or label:
                rows.append({"key": key, "label": label})
        return rows

    def value_omitted_from_data(self, data, files, name):
        return f"{name}-key" not in data


class ChoiceRowsField(forms.Field):
    """The choices of a list question, edited as rows (`ChoiceRowsWidget`)."""

    widget = ChoiceRowsWidget

    def __init__(self, *, encoder=None, decoder=None, **kwargs):
        # The model's JSONField passes its encoder and decoder; rows need neither.
        super().__init__(**kwargs)

    def to_python(self, value):
        return value or []

    def validate(self, value):
        super().validate(value)
        for row in value:
            if not row["key"] or not row["label"]:
                raise forms.ValidationError(
                    _("Each choice needs a key and a label."), code="incomplete_choice"
                )

    def has_changed(self, initial, data):
        return (initial or []) != (data or [])
