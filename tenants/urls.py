from django.urls import path

from tenants.apis import (
    BuildCollectionApi,
    BuildDetailApi,
    TenantCollectionApi,
    TenantDeprovisionApi,
    TenantDetailApi,
    TenantResumeApi,
    TenantResyncApi,
    TenantRetryProvisioningApi,
    TenantSuspendApi,
    TenantUpdateApi,
    TenantUpdateRollBackApi,
    TierCollectionApi,
    TierDetailApi,
)
from tenants.pipeline_apis import (
    RunCancelApi,
    RunRedriveApi,
    StepApproveApi,
    StepRejectApi,
    TenantPipelineRunsApi,
    TierPipelineApi,
    TierPipelinesApi,
)

urlpatterns = [
    path("api/tenants/", TenantCollectionApi.as_view(), name="tenants"),
    path("api/tenants/<str:pk>/", TenantDetailApi.as_view(), name="tenant-detail"),
    path(
        "api/tenants/<str:pk>/retry-provisioning/",
        TenantRetryProvisioningApi.as_view(),
        name="tenant-retry-provisioning",
    ),
    path("api/tenants/<str:pk>/deprovision/", TenantDeprovisionApi.as_view(), name="tenant-deprovision"),
    path("api/tenants/<str:pk>/resync/", TenantResyncApi.as_view(), name="tenant-resync"),
    path("api/tenants/<str:pk>/update/", TenantUpdateApi.as_view(), name="tenant-update"),
    path("api/tenants/<str:pk>/roll-back/", TenantUpdateRollBackApi.as_view(), name="tenant-roll-back"),
    path("api/tenants/<str:pk>/suspend/", TenantSuspendApi.as_view(), name="tenant-suspend"),
    path("api/tenants/<str:pk>/resume/", TenantResumeApi.as_view(), name="tenant-resume"),
    path("api/tiers/", TierCollectionApi.as_view(), name="tiers"),
    path("api/tiers/<str:name>/", TierDetailApi.as_view(), name="tier-detail"),
    path("api/tiers/<str:name>/pipelines/", TierPipelinesApi.as_view(), name="tier-pipelines"),
    path("api/tiers/<str:name>/pipelines/<str:operation>/", TierPipelineApi.as_view(), name="tier-pipeline"),
    path("api/tenants/<str:pk>/pipeline-runs/", TenantPipelineRunsApi.as_view(), name="tenant-pipeline-runs"),
    path("api/pipeline-steps/<int:pk>/approve/", StepApproveApi.as_view(), name="pipeline-step-approve"),
    path("api/pipeline-steps/<int:pk>/reject/", StepRejectApi.as_view(), name="pipeline-step-reject"),
    path("api/pipeline-runs/<int:pk>/redrive/", RunRedriveApi.as_view(), name="pipeline-run-redrive"),
    path("api/pipeline-runs/<int:pk>/cancel/", RunCancelApi.as_view(), name="pipeline-run-cancel"),
    path("api/builds/", BuildCollectionApi.as_view(), name="builds"),
    path("api/builds/<int:pk>/", BuildDetailApi.as_view(), name="build-detail"),
]
