"""Helpers the scenarios share: clients on a hub, unique names, and waiting on a condition (no sleeps)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

from hub import TOKENS, Hub
from switchboard import AgentClient, ControlClient, Mirror, MonitorClient, Workflow, connect_agent, connect_control, connect_monitor
from switchboard.connection import Connection

_names = itertools.count(1)
#: Clients a scenario opened; the test runner closes them when it ends, however it ends.
_opened: list[AgentClient | ControlClient | MonitorClient] = []


async def close_all() -> None:
    """Closes every client the scenario opened."""
    clients, _opened[:] = list(_opened), []
    await asyncio.gather(*(client.close() for client in clients), return_exceptions=True)


def unique(prefix: str) -> str:
    """A name no other test uses on the shared hub (task types too, so no agent takes another test's work)."""
    return f"{prefix}-{next(_names)}"


async def clients(hub: Hub) -> tuple[ControlClient, MonitorClient]:
    """A control client and a monitor on `hub`."""
    control, monitor = await connect_control(hub.url, TOKENS["admin"]), await connect_monitor(hub.url, TOKENS["monitor"])
    _opened.extend([control, monitor])
    return control, monitor


async def started(control: ControlClient, monitor: MonitorClient, user_query: str) -> tuple[Workflow, Mirror]:
    """A new started workflow, and the monitor's mirror of it."""
    wf = await control.create_workflow(user_query)
    await wf.start()
    return wf, await monitor.subscribe(wf.id)


async def agent(hub: Hub, task_type: str, **options: Any) -> AgentClient:
    """An agent registered on `hub` (at `url`, if given) that takes only `task_type` (its handler is added by the test); a fresh id unless `agent_id` is given."""
    options.setdefault("agent_id", unique("py-agent"))
    client = await connect_agent(options.pop("url", hub.url), TOKENS["agent"], agent_type="test", **options)
    _opened.append(client)
    return client


async def until(condition: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
    """Waits until `condition()` is truthy, checking after each turn of the loop; raises with `what` after `timeout`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = condition()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def lose_answer(connection: Connection, event: str) -> asyncio.Event:
    """Makes the next `event` land on the hub but lose its answer: the connection drops as the ack arrives.

    Returns an event set once the answer was lost. Fault injection: it wraps the socket's emit (python-socketio has no hook for it).
    """
    sio = connection._sio
    emit = sio.emit
    lost = asyncio.Event()
    dropping: set[asyncio.Task[Any]] = set()

    async def emitting(name: str, *args: Any, callback: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
        if name != event or lost.is_set() or callback is None:
            return await emit(name, *args, callback=callback, **kwargs)

        def on_ack(*_: Any) -> None:
            # The hub has acted and answered; the answer never reaches the caller, whose connection drops (and reconnects).
            sio.emit = emit
            lost.set()
            drop = asyncio.get_running_loop().create_task(sio.eio.ws.close())
            dropping.add(drop)
            drop.add_done_callback(dropping.discard)

        return await emit(name, *args, callback=on_ack, **kwargs)

    sio.emit = emitting
    return lost


async def drop(connection: Connection) -> None:
    """Drops the connection the hard way (its websocket closes under it), so that it reconnects. Fault injection, as lose_answer."""
    await connection._sio.eio.ws.close()


def requests_made(connection: Connection) -> list[str]:
    """The events of the requests `connection` is asked to make from now on, in order (a wrapper of its request method)."""
    made: list[str] = []
    request = connection.request

    async def recording(event: str, payload: dict[str, Any], timeout: float | None = None) -> Any:
        made.append(event)
        return await request(event, payload, timeout)

    connection.request = recording  # type: ignore[method-assign]
    return made
