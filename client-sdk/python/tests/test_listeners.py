"""Listeners: an event name there is not (a typo) is refused at once, not kept as a listener nothing ever calls."""

from __future__ import annotations

import pytest
from hub import Hub
from scenario import agent, clients, unique


async def test_a_listener_for_an_event_there_is_not_is_refused_naming_the_events_there_are(hub: Hub) -> None:
    control, monitor = await clients(hub)
    worker = await agent(hub, unique("listened"))
    with pytest.raises(ValueError, match="there is no 'reports' event to listen to; there are: 'report', 'error', 'draining'"):
        worker.on("reports", print)  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="there is no 'changes' event to listen to; there are: 'change', 'doc'"):
        monitor.on("changes", print)  # type: ignore[call-overload]
