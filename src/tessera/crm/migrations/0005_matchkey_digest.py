"""Match keys are looked up by a 64-bit digest of their text (a third of the index, and
integer comparisons), through a covering index."""

import hashlib

from django.db import migrations, models


def digest(key: str) -> int:
    # A copy of tessera.crm.matching.keys.digest as it is now: a migration must not change
    # when the code does.
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


def fill_digests(apps, schema_editor):  # type: ignore[no-untyped-def]
    MatchKey = apps.get_model("crm", "MatchKey")
    batch = []
    for row in MatchKey.objects.only("id", "key").iterator(chunk_size=5000):
        row.digest = digest(row.key)
        batch.append(row)
        if len(batch) >= 5000:
            MatchKey.objects.bulk_update(batch, ["digest"])
            batch = []
    if batch:
        MatchKey.objects.bulk_update(batch, ["digest"])


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0004_lead_converted_at_lead_converted_contact"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="matchkey", name="matchkey_lookup_idx"),
        migrations.AddField(
            model_name="matchkey",
            name="digest",
            field=models.BigIntegerField(
                default=0, help_text="keys.digest(key): what lookups search by"
            ),
            preserve_default=False,
        ),
        migrations.RunPython(fill_digests, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="matchkey",
            index=models.Index(
                fields=["object_type", "digest", "object_id"], name="matchkey_lookup_idx"
            ),
        ),
    ]
