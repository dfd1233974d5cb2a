from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "tessera.notifications"
    label = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from tessera.core.metrics import register_gauge
        from tessera.notifications.metrics import emails_by_status

        register_gauge(emails_by_status)
