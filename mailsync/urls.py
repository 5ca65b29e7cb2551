from django.urls import path

from mailsync import views, webhooks

app_name = "mailsync"

urlpatterns = [
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path(
        "webhooks/mail/tracking/",
        webhooks.TrackingWebhookView.as_view(),
        name="tracking_webhook",
    ),
]
