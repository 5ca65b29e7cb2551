from django.urls import path

from mailsync import backlog_views as views

app_name = "backlog"

urlpatterns = [
    path("mail/", views.email_list, name="emails"),
    path("mail/emails/<int:pk>/", views.email_detail, name="email"),
    path("mail/emails/<int:pk>/link", views.email_link, name="email_link"),
    path("accounts/<int:pk>/emails/", views.account_emails, name="account"),
    path("contacts/<int:pk>/emails/", views.contact_emails, name="contact"),
    path("rph/<int:pk>/emails/", views.rph_emails, name="rph"),
]
