from django.urls import path

from mailsync import contact_views, mailboxes, views, webhooks

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
    path("contacts/<int:pk>/", contact_views.contact_detail, name="contact"),
    path("contacts/<int:pk>/lift", contact_views.contact_lift, name="contact_lift"),
]
