from django.urls import path

from monitoring.views import health

urlpatterns = [path("health", health, name="health")]
