"""A task's progress stream: sent at once when nothing is in flight, coalesced to the latest while one is."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from .errors import HubError

#: Failures after which the update is sent again (with whatever newer one came meanwhile): a hub that was
#: unreachable for a while or asked us to slow down (RATE_LIMITED) must not fail the task.
SEND_AGAIN = frozenset({"DISCONNECTED", "TIMEOUT", "UNAVAILABLE", "RATE_LIMITED"})
#: The pause before sending again, so a hub answering UNAVAILABLE or RATE_LIMITED is not asked in a tight loop.
SEND_AGAIN_AFTER_S = 0.2


def _coalesce(older: dict[str, Any] | None, newer: dict[str, Any] | None) -> dict[str, Any] | None:
    """One update standing for `older` then `newer`: the hub keeps a message or details (the checkpoint) an update
    leaves out, so those of the older one must not be dropped with it."""
    return {**older, **newer} if older is not None and newer is not None else (newer if newer is not None else older)


class ProgressStream:
    """Sends the latest progress of one attempt; whoever pushed waits until its update (or a newer one) was answered."""

    def __init__(self, send: Callable[[dict[str, Any]], Awaitable[Any]]) -> None:
        self._send = send
        self._pending: dict[str, Any] | None = None
        self._waiters: list[asyncio.Future[None]] = []
        self._in_flight = False
        self._stopped: HubError | None = None
        self._task: asyncio.Task[None] | None = None

    async def push(self, update: dict[str, Any]) -> None:
        """Queues `update` (replacing one not yet sent) and waits until the hub has it."""
        if self._stopped is not None:
            raise self._stopped
        loop = asyncio.get_running_loop()
        self._pending = _coalesce(self._pending, update)
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        if not self._in_flight:
            self._in_flight = True
            self._task = loop.create_task(self._flush())
        await waiter

    async def _flush(self) -> None:
        try:
            while self._pending is not None and self._stopped is None:
                update, waiters = self._pending, self._waiters
                self._pending, self._waiters = None, []
                try:
                    await self._send(update)
                except HubError as error:
                    if error.code in SEND_AGAIN and self._stopped is None:
                        self._pending = _coalesce(update, self._pending)
                        self._waiters = waiters + self._waiters
                        await asyncio.sleep(SEND_AGAIN_AFTER_S)
                        continue
                    _settle(waiters, error)
                except Exception as error:  # noqa: BLE001 - handed to whoever waits
                    _settle(waiters, error)
                else:
                    _settle(waiters, None)
        finally:
            self._in_flight = False

    async def send_pending(self) -> None:
        """Sends the update waiting and returns once it was answered, or could not be sent: before a failure is
        reported, so that the checkpoint it holds is kept for the next attempt."""
        if self._pending is None or self._stopped is not None:
            return
        sent: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(sent)
        if not self._in_flight:
            self._in_flight = True
            self._task = asyncio.get_running_loop().create_task(self._flush())
        # Its outcome is not ours to raise: the failure is reported either way.
        await asyncio.wait((sent,))
        if not sent.cancelled():
            sent.exception()

    def stop(self, error: HubError) -> None:
        """Stops sending; whoever still waits gets `error`."""
        self._stopped = error
        self._pending = None
        waiters, self._waiters = self._waiters, []
        _settle(waiters, error)


def _settle(waiters: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for waiter in waiters:
        if waiter.done():
            continue
        if error is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(error)
