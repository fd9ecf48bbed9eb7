"""A timer that beats three times per shortest lease it was asked to cover, until stopped."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


class Heartbeat:
    """Calls `beat` every leaseMs / 3 while something runs."""

    def __init__(self, beat: Callable[[], Awaitable[None]]) -> None:
        self._beat = beat
        self._task: asyncio.Task[None] | None = None
        self._every = float("inf")

    def cover(self, lease_ms: int) -> None:
        """Beats often enough for a lease of `lease_ms` too (restarted only when that is sooner)."""
        every = max(0.05, lease_ms / 3000)
        if self._task is not None and every >= self._every:
            return
        self.stop()
        self._every = every
        self._task = asyncio.get_running_loop().create_task(self._run(every))

    async def _run(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await self._beat()
            except Exception:  # noqa: BLE001 - the next beat tries again; the lease covers a few missed ones
                pass

    def stop(self) -> None:
        """Stops beating; the next cover() starts afresh."""
        if self._task is not None:
            self._task.cancel()
        self._task = None
        self._every = float("inf")
