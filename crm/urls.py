from django.contrib import admin
from django.urls import include, path

from crm import leads, preferences, views

admin.site.site_header = "Vigil"
admin.site.site_title = "Vigil"

urlpatterns = [
    path("tasks/<int:pk>/", views.task_detail, name="task_detail"),
    path("tasks/<int:pk>/complete", views.task_complete, name="task_complete"),
    path("opportunities/<int:pk>/", views.opportunity_detail, name="opportunity_detail"),
    path("opportunities/<int:pk>/update", views.opportunity_update, name="opportunity_update"),
    path("events/<int:pk>/", views.event_detail, name="event_detail"),
    path("dispatches/<int:pk>/", views.dispatch_detail, name="dispatch_detail"),
    path("leads/", leads.lead_list, name="leads"),
    path("leads/new", leads.lead_create, name="lead_create"),
    path("leads/<int:pk>/convert", leads.lead_convert, name="lead_convert"),
    path("me/", preferences.preferences, name="preferences"),
    path("", include("finance.urls")),
    path("", include("notifications.urls")),
    path("", include("monitoring.urls")),
    path("", include("parc.urls")),
    path("", include("nurture.urls")),
    path("", include("mailsync.urls")),
    path("", include("mailsync.backlog_urls")),
    path("admin/", admin.site.urls),
]
