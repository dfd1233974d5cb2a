"""Many simultaneous registrations of the same new person create one contact (PostgreSQL)."""

from __future__ import annotations

import threading

import pytest
from django.db import connections

from tessera.crm.inputs import ContactChanges, ContactInput
from tessera.crm.matching import rules
from tessera.crm.matching.inputs import RuleChanges
from tessera.crm.matching.standard import install_standard_rules
from tessera.crm.models import Contact
from tessera.crm.services import resolve_person

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

N = 16


def test_concurrent_resolves_of_one_new_person_create_one_contact() -> None:
    # Transactional tests flush every table after them, the migrated standard rules too.
    install_standard_rules()
    rules.invalidate()
    barrier = threading.Barrier(N)
    ids: list[str] = []
    created: list[bool] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def register(i: int) -> None:
        try:
            barrier.wait()
            # The same person, typed slightly differently each time.
            first = ["Margaret", "Maggie", "margaret", "M."][i % 4]
            res = resolve_person(
                ContactInput(first_name=first, last_name="Hamilton", email="mh@mit.edu")
            )
            with lock:
                ids.append(res.record.pk)
                created.append(res.created)
        except BaseException as exc:  # report, don't hang the barrier
            with lock:
                errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=register, args=(i,)) for i in range(N)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert errors == []
    assert Contact.objects.count() == 1
    assert set(ids) == {Contact.objects.get().pk}
    assert created.count(True) == 1


def test_keys_rebuilt_while_contacts_are_edited_match_their_final_values() -> None:
    """A rule change re-keys every contact in the background while people keep editing
    theirs: no contact may end with the keys of values it no longer has."""
    from tessera.crm.matching.engine import keys_for
    from tessera.crm.matching.models import MatchKey
    from tessera.crm.matching.services import rebuild_match_keys
    from tessera.crm.services import create_contact, update_contact

    install_standard_rules()
    rules.invalidate()
    people = [
        create_contact(
            ContactInput(first_name=f"P{i}", last_name=f"Edited{i}", email=f"p{i}@example.org"),
            check_duplicates=False,
        ).record
        for i in range(60)
    ]
    stop = threading.Event()
    errors: list[BaseException] = []

    def rebuild() -> None:
        try:
            while not stop.is_set():
                rebuild_match_keys("contact")
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    def edit(worker: int) -> None:
        try:
            for round_ in range(15):
                for person in people[worker::4]:
                    update_contact(
                        person.pk, ContactChanges(email=f"{person.pk}-{round_}@example.org")
                    )
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    rebuilder = threading.Thread(target=rebuild)
    editors = [threading.Thread(target=edit, args=(w,)) for w in range(4)]
    rebuilder.start()
    for t in editors:
        t.start()
    for t in editors:
        t.join(timeout=120)
    stop.set()
    rebuilder.join(timeout=120)
    assert errors == []
    stale = [
        c.pk
        for c in Contact.objects.all()
        if set(MatchKey.objects.filter(object_type="contact", object_id=c.pk)
               .values_list("key", flat=True)) != keys_for("contact", c)
    ]  # fmt: skip
    assert stale == []


def race_import_and_create(path, email: str) -> list[BaseException]:  # type: ignore[no-untyped-def]
    """Import ``path`` and create the same person through the service at the same moment;
    returns the unexpected errors."""
    from tessera.crm.importer import import_contacts
    from tessera.crm.services import DuplicateBlocked, create_contact

    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def by_import() -> None:
        try:
            barrier.wait()
            import_contacts(path)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    def by_api() -> None:
        try:
            barrier.wait()
            create_contact(ContactInput(first_name="Rosalind", last_name="Franklin", email=email))
        except DuplicateBlocked:
            pass  # the import's contact came first: refused, as a block rule says
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=by_import), threading.Thread(target=by_api)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return errors


def test_an_import_and_an_api_create_of_one_person_make_one_contact(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Under a block rule, a CSV import and an API create of the same new person at the
    same moment: one of them creates, the other links (import) or is refused (API)."""
    from tessera.crm.matching.models import MatchingRule
    from tessera.crm.matching.services import update_rule

    install_standard_rules()
    update_rule(MatchingRule.objects.get(object="contact", is_standard=True).pk,
                RuleChanges(action="block"))  # fmt: skip
    rules.invalidate()
    for round_ in range(12):
        email = f"race{round_}@example.org"
        path = tmp_path / f"race{round_}.csv"
        path.write_text(f"First Name,Last Name,Email\nRosalind,Franklin,{email}\n")
        assert race_import_and_create(path, email) == []
        assert Contact.objects.filter(email=email).count() == 1, f"round {round_}"
