"""Many simultaneous registrations of the same new person create one contact (PostgreSQL)."""

from __future__ import annotations

import threading

import pytest
from django.db import connections

from tessera.crm.matching import rules
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
                {"first_name": first, "last_name": "Hamilton", "email": "mh@mit.edu"}
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
