from django.urls import path

from events.apis import EventCollectionApi, EventDetailApi, EventDryRunApi, EventReplayApi, OriginalIntakeApi
from events.oauth.apis import TokenApi

urlpatterns = [
    path("api/events/", EventCollectionApi.as_view(), name="events"),
    path("api/events/dry-run/", EventDryRunApi.as_view(), name="event-dry-run"),
    path("api/events/<int:pk>/", EventDetailApi.as_view(), name="event-detail"),
    path("api/events/<int:pk>/replay/", EventReplayApi.as_view(), name="event-replay"),
    path("orchestrator/events/<str:eventType>", OriginalIntakeApi.as_view(), name="events-original"),
    path("oauth/token", TokenApi.as_view(), name="oauth-token"),
]
