from django.urls import path

from nurture import views

app_name = "nurture"
urlpatterns = [
    path("rph/<int:pk>/", views.rph_detail, name="rph"),
    path("rph/<int:pk>/reply", views.rph_reply, name="reply"),
    path("nurture/closed/", views.closed_in_run, name="closed"),
]
