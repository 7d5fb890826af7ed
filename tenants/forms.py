"""Admin forms of the tier mapping: the same rules as the API (``tenants.services.tiers`` for the name,
``tenants.services.build_policy`` for the builders)."""

from typing import Any

from django import forms
from django.forms.models import BaseInlineFormSet

from orchestrator.admin_helpers import form_errors_add
from orchestrator.errors import ApplicationError
from tenants.models import BuilderType, Tier, default_allowed_builders
from tenants.services.build_policy import tier_builder_problems, tier_variable_problems
from tenants.services.tiers import tier_validate

TIER_FIELDS = [
    "name",
    "provision_project",
    "deprovision_project",
    "update_project",
    "suspend_project",
    "resume_project",
    "allowed_builders",
    "description",
]


class TierForm(forms.ModelForm):
    """Checks a tier with the tier services' own rules: its name (taken once, never changed) and its builders."""

    allowed_builders = forms.MultipleChoiceField(
        choices=BuilderType.choices,
        initial=default_allowed_builders,
        widget=forms.CheckboxSelectMultiple,
        help_text=Tier._meta.get_field("allowed_builders").help_text,
    )

    class Meta:
        model = Tier
        fields = TIER_FIELDS

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data  # what ModelForm.clean returns (typed optional: an override may return None)
        if data.get("name"):
            try:
                tier_validate(tier=self.instance if self.instance.pk else None, name=data["name"])
            except ApplicationError as error:
                form_errors_add(self, error)
        if "allowed_builders" in data:
            problems = tier_builder_problems(
                allowed_builders=data["allowed_builders"],
                provision_project=data.get("provision_project", ""),
                deprovision_project=data.get("deprovision_project", ""),
                update_project=data.get("update_project", ""),
                suspend_project=data.get("suspend_project", ""),
                resume_project=data.get("resume_project", ""),
            )
            for field, messages in problems.items():
                self.add_error(field, messages)
        return data

    def validate_unique(self) -> None:
        """A taken name is reported by ``tier_validate`` above, once."""


class TierVariableFormSet(BaseInlineFormSet):
    """A LOCAL tier's variable names follow the LOCAL rule (``self.instance`` carries the form's builders)."""

    def clean(self) -> None:
        super().clean()
        names = [
            form.cleaned_data["name"]
            for form in self.forms
            if form.cleaned_data.get("name") and not form.cleaned_data.get("DELETE")
        ]
        problems = tier_variable_problems(names=names, allowed_builders=self.instance.allowed_builders)
        if problems:
            raise forms.ValidationError(problems["variables"])
