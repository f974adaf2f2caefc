"""Which of a run's write-ahead intents still hold items the destination has not answered
(:class:`~.store.RunStore`): an intent row is deleted by the commit that answers its last item.
Used from the event loop's thread alone."""

from __future__ import annotations

from collections.abc import Iterable


class OpenIntents:
    """Intent id → how many of its items are not answered yet."""

    def __init__(self) -> None:
        self._unanswered: dict[int, int] = {}

    def opened(self, intent: int, items: int) -> None:
        """An intent holding ``items`` items was committed."""
        self._unanswered[intent] = items

    def answered(self, answers: Iterable[tuple[int, int]]) -> list[int]:
        """``(intent, items)`` answered now: the intents with nothing left unanswered (each
        once; an intent this run did not open is left to
        :meth:`~segsync.storage.repositories.sync.SyncStateRepository.settle_intents`)."""
        done = []
        for intent, items in answers:
            left = self._unanswered.get(intent)
            if left is None:
                continue
            if left > items:
                self._unanswered[intent] = left - items
            else:
                del self._unanswered[intent]
                done.append(intent)
        return done
