from django.urls import path

from webhooks.apis import (
    DeliveryCollectionApi,
    DeliveryDetailApi,
    DeliveryRetryApi,
    EndpointCollectionApi,
    EndpointDetailApi,
    EndpointRotateSecretApi,
)

urlpatterns = [
    path("api/webhook-endpoints/", EndpointCollectionApi.as_view(), name="webhook-endpoints"),
    path("api/webhook-endpoints/<int:pk>/", EndpointDetailApi.as_view(), name="webhook-endpoint-detail"),
    path(
        "api/webhook-endpoints/<int:pk>/rotate-secret/",
        EndpointRotateSecretApi.as_view(),
        name="webhook-endpoint-rotate-secret",
    ),
    path("api/webhook-deliveries/", DeliveryCollectionApi.as_view(), name="webhook-deliveries"),
    path("api/webhook-deliveries/<int:pk>/", DeliveryDetailApi.as_view(), name="webhook-delivery-detail"),
    path("api/webhook-deliveries/<int:pk>/retry/", DeliveryRetryApi.as_view(), name="webhook-delivery-retry"),
]
