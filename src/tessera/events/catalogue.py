"""An event's catalogue, its items and its questions (with the items each applies to), as
every checkout reads it: cached per process under the event's ``catalogue_version``.

The event row itself is read fresh by every checkout (its status, currency and program
decide whether anything is on sale), and with it the version: a cached catalogue is used
only when its version is the row's, so an edit in any process is seen by the next
checkout everywhere. Counters (``sold``, ``waiting``) on the cached items are stale by
design and never read from here: places are taken by conditional updates
(``events.capacity``). Cached objects are shared between threads and never changed.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from django.db.models import Prefetch

from tessera.events.models import Event, EventItem, Question

MAX_EVENTS = 256  # catalogues kept per process; the least recently used goes first


@dataclass(frozen=True)
class Catalogue:
    version: int
    items: dict[str, EventItem]
    questions: tuple[Question, ...]


_cache: OrderedDict[str, Catalogue] = OrderedDict()
_lock = threading.Lock()


def catalogue(event: Event) -> Catalogue:
    """The items and questions of ``event`` as of its ``catalogue_version``."""
    with _lock:
        found = _cache.get(event.pk)
        if found is not None and found.version == event.catalogue_version:
            _cache.move_to_end(event.pk)
            return found
    fresh = _load(event)
    with _lock:
        _cache[event.pk] = fresh
        _cache.move_to_end(event.pk)
        while len(_cache) > MAX_EVENTS:
            _cache.popitem(last=False)
    return fresh


def _load(event: Event) -> Catalogue:
    # Labelled with the version read before these rows, so the rows are never older than
    # their label: an edit committed in between is read here and, its version being newer,
    # makes the next checkout load again. (An edit and its version move commit together.)
    items = {item.pk: item for item in EventItem.objects.filter(event_id=event.pk)}
    questions = Question.objects.filter(event_id=event.pk).prefetch_related(
        Prefetch("items", queryset=EventItem.objects.only("id"))
    )
    return Catalogue(event.catalogue_version, items, tuple(questions))
