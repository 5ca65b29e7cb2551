from django.urls import path

from finance import views

urlpatterns = [path("invoices/<int:pk>/", views.invoice_detail, name="invoice_detail")]
