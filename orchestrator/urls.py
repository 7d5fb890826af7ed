from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from orchestrator.views import status_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("orchestrator/status", status_view, name="status"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("docs", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("", include("events.urls")),
    path("", include("tenants.urls")),
    path("", include("webhooks.urls")),
]

handler404 = "orchestrator.errors.json_not_found"
handler500 = "orchestrator.errors.json_server_error"
