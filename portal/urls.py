from django.urls import path

from portal.apis import DoctorApi, DoctorFixApi, TenantHistoryApi

urlpatterns = [
    path("api/tenants/<str:pk>/history/", TenantHistoryApi.as_view(), name="tenant-history"),
    path("api/doctor/", DoctorApi.as_view(), name="doctor"),
    path("api/doctor/fixes/", DoctorFixApi.as_view(), name="doctor-fix"),
]
