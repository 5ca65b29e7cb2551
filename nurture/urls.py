from django.urls import path

from nurture import views

app_name = "nurture"
urlpatterns = [
    path("rph/<int:pk>/", views.rph_detail, name="rph"),
    path("rph/<int:pk>/reply", views.rph_reply, name="reply"),
    path("rph/<int:pk>/edit", views.rph_edit, name="edit"),
    path("rph/<int:pk>/status", views.rph_status, name="status"),
    path("nurture/closed/", views.closed_in_run, name="closed"),
]
