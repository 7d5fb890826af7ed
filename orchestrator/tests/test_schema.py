from django.core.management import call_command


def test_openapi_schema_validates_without_warnings(capsys):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")
    captured = capsys.readouterr()
    assert "Warning" not in captured.err


def test_swagger_ui_is_served_at_the_original_path(client):
    response = client.get("/docs")
    assert response.status_code == 200
    assert b"swagger-ui" in response.content
