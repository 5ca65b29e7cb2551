from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"

    def ready(self) -> None:
        from django.contrib import admin

        from notifications import (  # noqa: F401 - connect their receivers
            receivers,
            services,
        )
        from notifications.forms import AdminLoginForm

        # The admin's login refuses locked-out users exactly as the site's does.
        admin.site.login_form = AdminLoginForm
