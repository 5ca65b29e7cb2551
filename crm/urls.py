from django.contrib import admin
from django.urls import include, path

from crm import absences, accounts, contacts, feeds, leads, preferences, records, views

admin.site.site_header = "Vigil"
admin.site.site_title = "Vigil"

urlpatterns = [
    path("tasks/<int:pk>/", views.task_detail, name="task_detail"),
    path("tasks/<int:pk>/complete", views.task_complete, name="task_complete"),
    path("tasks/new", records.task_create, name="task_create"),
    path("tasks/<int:pk>/edit", records.task_edit, name="task_edit"),
    path("opportunities/new", records.opportunity_create, name="opportunity_create"),
    path("opportunities/<int:pk>/edit", records.opportunity_edit, name="opportunity_edit"),
    path("events/new", records.event_create, name="event_create"),
    path("events/<int:pk>/edit", records.event_edit, name="event_edit"),
    path("accounts/", accounts.account_list, name="accounts"),
    path("accounts/new", accounts.account_create, name="account_create"),
    path("accounts/<int:pk>/edit", accounts.account_edit, name="account_edit"),
    path("opportunities/<int:pk>/", views.opportunity_detail, name="opportunity_detail"),
    path("opportunities/<int:pk>/update", views.opportunity_update, name="opportunity_update"),
    path("events/<int:pk>/", views.event_detail, name="event_detail"),
    path("dispatches/<int:pk>/", views.dispatch_detail, name="dispatch_detail"),
    path("leads/", leads.lead_list, name="leads"),
    path("leads/new", leads.lead_create, name="lead_create"),
    path("leads/<int:pk>/convert", leads.lead_convert, name="lead_convert"),
    path("contacts/", contacts.contact_list, name="contacts"),
    path("contacts/new", contacts.contact_create, name="contact_create"),
    path("contacts/<int:pk>/edit", contacts.contact_edit, name="contact_edit"),
    path("contacts/<int:pk>/status", contacts.contact_status, name="contact_status"),
    path("search/", include("crm.search")),
    path("me/", preferences.preferences, name="preferences"),
    path("me/calendar-feed", feeds.feed_settings, name="feed_settings"),
    path("me/time-zones", preferences.time_zone_list, name="time_zones"),
    path("feeds/calendar.ics", feeds.calendar_feed, name="calendar_feed"),
    path("team/away/", absences.away_page, name="away"),
    path("team/away/<int:pk>/remove", absences.absence_remove, name="absence_remove"),
    path("", include("finance.urls")),
    path("", include("notifications.urls")),
    path("", include("monitoring.urls")),
    path("", include("parc.urls")),
    path("", include("nurture.urls")),
    path("", include("mailsync.urls")),
    path("", include("mailsync.backlog_urls")),
    path("admin/", admin.site.urls),
]
