"""Install Salesforce's standard matching rules (see tessera.crm.matching.standard)."""

from django.db import migrations

from tessera.crm.matching.standard import install_standard_rules


def install(apps, schema_editor):
    install_standard_rules(apps.get_model("crm", "MatchingRule"), apps.get_model("crm", "MatchingCriterion"))


def remove(apps, schema_editor):
    apps.get_model("crm", "MatchingRule").objects.filter(is_standard=True).delete()


class Migration(migrations.Migration):
    dependencies = [("crm", "0002_matching")]
    operations = [migrations.RunPython(install, remove)]
