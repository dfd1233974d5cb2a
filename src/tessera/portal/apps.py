from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "tessera.portal"
    label = "portal"
    verbose_name = "Member portal"

    def ready(self) -> None:
        from tessera.notifications.secrets import register_secret_filler
        from tessera.portal.signin import fill_signin_token

        register_secret_filler("signin_link", fill_signin_token)
