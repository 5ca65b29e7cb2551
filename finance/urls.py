from django.urls import path

from finance import views

urlpatterns = [
    path("invoices/", views.invoices, name="invoices"),
    path("invoices/export.csv", views.invoices_export, name="invoices_csv"),
    path("invoices/<int:pk>/", views.invoice_detail, name="invoice_detail"),
    path("invoices/<int:pk>/payments", views.invoice_payment, name="invoice_payment"),
]
