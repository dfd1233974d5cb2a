"""Re-key every record: match keys now come in several shapes per rule group (a part left
out, or cut to forms one typo cannot change), and a phone's key no longer holds its
country code. Records keyed before would miss the lookups of records keyed after.

This runs the current re-keying code (not a historical model): it is the same operation as
``tessera matchkeys rebuild``, which may also be run again at any time. A million records
take a few minutes.
"""

from django.db import migrations


def rekey(apps, schema_editor):
    from tessera.crm.matching.rules import OBJECT_MODELS
    from tessera.crm.matching.services import rebuild_match_keys

    for object_type, name in OBJECT_MODELS.items():
        # A new installation has nothing to re-key (and never reads today's models).
        if apps.get_model("crm", name).objects.exists():
            rebuild_match_keys(object_type)


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0009_matching_probabilistic"),
    ]

    operations = [migrations.RunPython(rekey, migrations.RunPython.noop)]
