"""Re-key every record: a short company word is now stored as an abbreviation ("abbr:")
and looked up as an acronym, and a group of a first name, a last name and a phone keys
the last name's two ends beside the phone instead of leaving it out. Records keyed before
would miss the lookups of records keyed after.

The same operation as ``tessera matchkeys rebuild`` (see 0010), with today's code.
"""

from django.db import migrations


def rekey(apps, schema_editor):
    from tessera.crm.matching.rules import OBJECT_MODELS
    from tessera.crm.matching.services import rebuild_match_keys

    for object_type, name in OBJECT_MODELS.items():
        if apps.get_model("crm", name).objects.exists():
            rebuild_match_keys(object_type)


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0010_rekey_loosened_blocking"),
    ]

    operations = [migrations.RunPython(rekey, migrations.RunPython.noop)]
