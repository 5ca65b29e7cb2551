from django.urls import path

from parc import views

app_name = "parc"
urlpatterns = [
    path("accounts/<int:pk>/", views.account_page, name="account"),
    # The PARC page an account had before its account page: old links and bookmarks.
    path("parc/accounts/<int:pk>/", views.account_agreements, name="account_agreements"),
    path("parc/runs/", views.run_summary, name="run"),
]
