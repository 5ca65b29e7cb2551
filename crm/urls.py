from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

admin.site.site_header = "Vigil"
admin.site.site_title = "Vigil"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index"), name="home"),
    path("", include("monitoring.urls")),
    path("admin/", admin.site.urls),
]
