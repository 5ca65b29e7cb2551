from django.urls import path

from mailsync import mailboxes, views, webhooks

app_name = "mailsync"

urlpatterns = [
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path(
        "webhooks/mail/tracking/",
        webhooks.TrackingWebhookView.as_view(),
        name="tracking_webhook",
    ),
    path("mail/mailboxes/", mailboxes.mailbox_list, name="mailboxes"),
    path("mail/mailboxes/<int:pk>/connect", mailboxes.mailbox_connect, name="mailbox_connect"),
    path("mail/mailboxes/<int:pk>/remove", mailboxes.mailbox_remove, name="mailbox_remove"),
    path("mail/oauth/callback", mailboxes.oauth_callback, name="oauth_callback"),
]
