"""Named callbacks: `on(event, listener)` returns a function that removes the listener."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .logger import log



class Listeners:
    """Listeners by event name; one that raises is logged and does not stop the others."""

    def __init__(self, *events: str) -> None:
        #: The events there are: a listener for another name (a typo) would never be called, without a word.
        self._events = events
        self._by_event: dict[str, list[Callable[[Any], None]]] = {}

    def on(self, event: str, listener: Callable[[Any], None]) -> Callable[[], None]:
        """Adds a listener; returns a function that removes it. An event there is not raises ValueError."""
        if event not in self._events:
            raise ValueError(f"there is no {event!r} event to listen to; there are: {', '.join(map(repr, self._events))}")
        self._by_event.setdefault(event, []).append(listener)

        def off() -> None:
            if listener in self._by_event.get(event, []):
                self._by_event[event].remove(listener)

        return off

    def emit(self, event: str, payload: Any) -> None:
        """Calls every listener of `event` with `payload`."""
        for listener in list(self._by_event.get(event, [])):
            try:
                listener(payload)
            except Exception:  # noqa: BLE001 - a listener's bug must not break the client
                log.exception("switchboard: a %r listener raised", event)
