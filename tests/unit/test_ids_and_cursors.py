import pytest

from tessera.core.errors import ValidationFailed
from tessera.core.idempotency import check_key, fingerprint
from tessera.core.ids import new_id
from tessera.core.pagination import decode_cursor, encode_cursor


def test_ids_carry_prefix_and_sort_by_creation() -> None:
    ids = [new_id("con") for _ in range(50)]
    assert all(i.startswith("con_") and len(i) == 30 for i in ids)
    assert len(set(ids)) == 50
    # ULIDs sort by millisecond; ids made later never sort before earlier milliseconds.
    assert sorted(ids)[0][:14] == ids[0][:14]


def test_cursor_round_trip_and_garbage() -> None:
    assert decode_cursor(encode_cursor("con_01ABC")) == "con_01ABC"
    for bad in ["", "%%%", "bm90IGpzb24", encode_cursor("x")[:-3] + "!!!"]:
        with pytest.raises(ValidationFailed):
            decode_cursor(bad)


def test_fingerprint_ignores_json_key_order_and_spacing() -> None:
    a = fingerprint("POST", "/api/v1/contacts", b'{"a": 1, "b": [1, 2]}')
    b = fingerprint("post", "/api/v1/contacts", b'{"b":[1,2],"a":1}')
    c = fingerprint("POST", "/api/v1/contacts", b'{"a": 2, "b": [1, 2]}')
    d = fingerprint("POST", "/api/v1/leads", b'{"a": 1, "b": [1, 2]}')
    assert a == b
    assert len({a, c, d}) == 3


@pytest.mark.parametrize("bad", ["", "   ", "x" * 256, "tab\there"])
def test_idempotency_key_shape(bad: str) -> None:
    with pytest.raises(ValidationFailed):
        check_key(bad)
    assert check_key("  order-42 ") == "order-42"


def test_ids_made_one_after_another_sort_in_that_order() -> None:
    """Thousands in the same millisecond still sort in creation order (a request's timeline
    entries are read back newest first by id): python-ulid counts the random part up
    within a millisecond (its strict monotonic policy) rather than drawing it again."""
    ids = [new_id("tle") for _ in range(5000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
