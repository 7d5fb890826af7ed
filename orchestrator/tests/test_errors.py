from rest_framework.exceptions import ValidationError

from orchestrator.errors import flatten_errors


def test_nested_validation_errors_become_dotted_paths():
    error = ValidationError(
        {
            "detail": {
                "tenant": {"id": ["This field is required."]},
                "contacts": [{}, {"email": ["Enter a valid email."]}],
            }
        }
    )
    assert flatten_errors(error.detail) == {
        "detail.tenant.id": ["This field is required."],
        "detail.contacts[1].email": ["Enter a valid email."],
    }


def test_unknown_urls_answer_the_standard_error_shape(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "Not found."}}
