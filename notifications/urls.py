from django.contrib.auth import views as auth_views
from django.urls import include, path

from notifications import blocking_views, views

notification_patterns = [
    path("notifications/", views.notification_list, name="list"),
    path("notifications/<int:pk>/dismiss", views.dismiss, name="dismiss"),
    path("notifications/<int:pk>/snooze", views.snooze, name="snooze"),
    path("notifications/remind", views.remind, name="remind"),
    path("notifications/blocking/new", blocking_views.new_blocking, name="blocking_new"),
    path("tasks/", views.full_list, {"kind": "tasks"}, name="tasks"),
    path("opportunities/", views.full_list, {"kind": "opportunities"}, name="opportunities"),
    path("events/", views.full_list, {"kind": "events"}, name="events"),
    path("dispatches/", views.full_list, {"kind": "dispatches"}, name="dispatches"),
    path("api/notifications/", views.notification_api, name="api"),
    path("team/locked/", views.locked_users, name="locked"),
    path("users/<int:pk>/unlock", views.unlock, name="unlock"),
]

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include((notification_patterns, "notifications"))),
]
