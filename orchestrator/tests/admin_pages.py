"""The real admin pages, used as a browser uses them: a logged-in client that enforces CSRF, a page's form read
back with its token, and the messages shown after a redirect."""

from typing import Any

from django.contrib.messages import get_messages
from django.forms import BaseForm
from django.test import Client


def csrf_client(user: Any) -> Client:
    """A client logged in as ``user`` whose POSTs need the CSRF token (as a browser's do)."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def _values(form: BaseForm) -> dict[str, Any]:
    values = {}
    for name in form.fields:
        value = form[name].value()
        if value is None or value is False:
            continue  # what a browser leaves out: an empty choice, an unticked box
        values[form.add_prefix(name)] = "on" if value is True else value
    return values


def page_form(page: Any) -> dict[str, Any]:
    """What the change (or add) page's form posts when submitted as shown: fields, inline rows, CSRF token."""
    data = {"csrfmiddlewaretoken": str(page.context["csrf_token"]), **_values(page.context["adminform"].form)}
    for inline in page.context["inline_admin_formsets"]:
        data.update(_values(inline.formset.management_form))
        for form in inline.formset.forms:
            data.update(_values(form))
    return data


def csrf_token(page: Any) -> str:
    return str(page.context["csrf_token"])


def shown_messages(response: Any) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]
