from django.apps import AppConfig
from django.db.models.signals import post_migrate, pre_migrate


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = "CRM"

    def ready(self) -> None:
        from django.utils.module_loading import autodiscover_modules

        from crm import rollups, triggers
        from crm.schedules import sync_after_migrate

        autodiscover_modules("jobs")
        post_migrate.connect(sync_after_migrate, sender=self)
        for migration, uninstall, reinstall in (
            ("0008_contact_team", triggers.uninstall, triggers.reinstall),
            ("0015_lead_team", triggers.uninstall_leads, triggers.reinstall_leads),
            ("0018_owner_rollups", rollups.uninstall, rollups.reinstall),
            ("0020_owned_teams", triggers.uninstall_owned, triggers.reinstall_owned),
        ):
            before, after = triggers.around_migrate("crm", migration, uninstall, reinstall)
            pre_migrate.connect(before, sender=self, weak=False)
            post_migrate.connect(after, sender=self, weak=False)
