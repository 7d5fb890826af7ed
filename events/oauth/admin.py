"""Admin for the token endpoint's clients: create (the secret is shown once), rotate the secret, revoke.

The admin only parses and calls ``events.oauth.services``; a secret is never stored in the clear nor shown
again after the page that follows its creation or rotation.
"""

from typing import TYPE_CHECKING, Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from events.oauth.models import OAuthClient
from events.oauth.services import oauth_client_create, oauth_client_revoke, oauth_client_rotate_secret
from orchestrator.admin_helpers import secret_once_page

if TYPE_CHECKING:  # django-stubs' name for what the admin's ``fields`` option accepts
    from django.contrib.admin.options import _FieldGroups

READ_ONLY = (
    "client_id",
    "is_active",
    "created_at",
    "secret_rotated_at",
    "previous_secret_valid_until",
    "last_token_at",
    "revoked_at",
)


class OAuthClientForm(forms.ModelForm):
    class Meta:
        model = OAuthClient
        fields = ["name"]


@admin.register(OAuthClient)
class OAuthClientAdmin(admin.ModelAdmin):
    form = OAuthClientForm
    list_display = ("name", "client_id", "is_active", "created_at", "secret_rotated_at", "last_token_at", "revoked_at")
    list_filter = ("is_active",)
    search_fields = ("name", "client_id")
    actions = ["rotate_secrets", "revoke"]

    def get_fields(self, request: HttpRequest, obj: OAuthClient | None = None) -> "_FieldGroups":
        return ["name", *READ_ONLY] if obj else ["name"]

    def get_readonly_fields(self, request: HttpRequest, obj: OAuthClient | None = None) -> tuple[str, ...]:
        return READ_ONLY if obj else ()

    def save_model(self, request: HttpRequest, obj: OAuthClient, form: forms.Form, change: bool) -> None:
        if change:
            OAuthClient.objects.filter(pk=obj.pk).update(name=form.cleaned_data["name"])
            return
        client, secret = oauth_client_create(name=form.cleaned_data["name"])
        obj.pk = client.pk
        obj.refresh_from_db()
        request._oauth_new_secrets = [{"client": client, "secret": secret}]  # type: ignore[attr-defined]

    def response_add(self, request: HttpRequest, obj: OAuthClient, post_url_continue: str | None = None) -> Any:
        return self._secrets_page(request, request._oauth_new_secrets, title="Client created: its secret")  # type: ignore[attr-defined]

    def _secrets_page(self, request: HttpRequest, secrets: list[dict], *, title: str) -> HttpResponse:
        return secret_once_page(
            self,
            request,
            "admin/events/oauthclient/secret_once.html",
            title=title,
            secrets=secrets,
            token_url=settings.ORCHESTRATOR_BASE_URL.rstrip("/") + "/oauth/token",
            grace_hours=round(settings.OAUTH_CLIENT_SECRET_GRACE_SECONDS / 3600, 1),
        )

    @admin.action(description="Rotate the secret of selected clients", permissions=["change"])
    def rotate_secrets(self, request: HttpRequest, queryset: QuerySet[OAuthClient]) -> HttpResponse | None:
        active = [client for client in queryset if client.is_active]
        if len(active) < len(queryset):
            messages.warning(request, "Revoked clients were left alone: a revoked client stays revoked.")
        if not active:
            return None
        shown = [{"client": client, "secret": oauth_client_rotate_secret(client=client)} for client in active]
        return self._secrets_page(request, shown, title="New client secrets")

    @admin.action(description="Revoke selected clients (their tokens stop working at once)", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[OAuthClient]) -> None:
        revoked = sum(oauth_client_revoke(client=client) for client in queryset)
        messages.success(request, f"{revoked} client(s) revoked; {queryset.count() - revoked} already were.")
