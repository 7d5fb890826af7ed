from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from orchestrator.views import bench_echo_view, metrics_view, status_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("orchestrator/status", status_view, name="status"),
    path("metrics", metrics_view, name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("docs", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("", include("events.urls")),
    path("", include("tenants.urls")),
    path("", include("webhooks.urls")),
    path("", include("portal.urls")),
]
if settings.BENCH_ENDPOINTS:  # the intake benchmark's baseline; off unless BENCH_ENDPOINTS=true
    urlpatterns.append(path("bench/echo/", bench_echo_view, name="bench-echo"))

handler404 = "orchestrator.errors.json_not_found"
handler500 = "orchestrator.errors.json_server_error"
