from django.urls import path

from parc import views

app_name = "parc"
urlpatterns = [
    path("parc/accounts/<int:pk>/", views.account_agreements, name="account"),
    path("parc/runs/", views.run_summary, name="run"),
]
