from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"

    def ready(self) -> None:
        from monitoring import heartbeat, receivers  # noqa: F401 - connects signal receivers
