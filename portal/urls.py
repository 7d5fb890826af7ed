from django.urls import path

from portal.apis import TenantHistoryApi

urlpatterns = [
    path("api/tenants/<str:pk>/history/", TenantHistoryApi.as_view(), name="tenant-history"),
]
