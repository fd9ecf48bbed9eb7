"""What a task handler deals with: the task, its context, and what it may return."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar, Union

from .errors import HubError

T = TypeVar("T")


@dataclass(frozen=True)
class Task:
    """One offered attempt of a work order, as the hub's `assignment` push carries it."""

    workflow_id: str
    work_order_id: str
    attempt_token: str
    attempt: int
    task_type: str
    input: Any
    description: str = ""
    inputs: list[dict[str, Any]] = field(default_factory=list)
    priority: str = "normal"
    requirements: list[str] = field(default_factory=list)
    checkpoint: Any = None
    accept_ms: int = 10_000
    lease_ms: int = 30_000
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_assignment(cls, a: dict[str, Any]) -> Task:
        """The Task of an `assignment` payload."""
        return cls(
            workflow_id=a["workflowId"], work_order_id=a["workOrderId"], attempt_token=a["attemptToken"],
            attempt=a.get("attempt", 1), task_type=a["taskType"], input=a.get("input"),
            description=a.get("description") or "", inputs=a.get("inputs") or [], priority=a.get("priority", "normal"),
            requirements=a.get("requirements") or [], checkpoint=a.get("checkpoint"),
            accept_ms=a.get("acceptMs", 10_000), lease_ms=a.get("leaseMs", 30_000), raw=a,
        )


@dataclass
class TaskResult:
    """What a handler may return to store a result and register the data it produced (`outputs`); any other value is the result itself."""

    result: Any = None
    outputs: list[dict[str, Any]] = field(default_factory=list)


class TaskContext:
    """What an async handler gets besides the task: progress, heartbeat, data, the checkpoint and a cancellation event."""

    def __init__(self, task: Task, progress: Callable[[float, str | None, Any], Awaitable[None]],
                 heartbeat: Callable[[], Awaitable[bool]], add_data: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]) -> None:
        self.workflow_id = task.workflow_id
        self.work_order_id = task.work_order_id
        #: 1 for the first attempt, 2 for the first retry, …
        self.attempt = task.attempt
        #: The details saved by a previous attempt's progress, or None.
        self.checkpoint = task.checkpoint
        #: Set when the hub cancels or takes back this attempt: stop work when it is.
        self.cancelled = asyncio.Event()
        #: Why the attempt was cancelled (None while it was not).
        self.cancel_reason: str | None = None
        self._progress = progress
        self._heartbeat = heartbeat
        self._add_data = add_data
        self._percentage: float = 0

    async def progress(self, percentage: float, message: str | None = None, details: Any = None) -> None:
        """Reports progress (0..100); `details` become the checkpoint handed to a later attempt.

        A percentage outside 0..100 (or NaN, or not a number) raises HubError VALIDATION at once and is not kept.
        """
        # Refused here, not by the hub: coalesced with a later update it would pass unnoticed, and kept it
        # would make every later checkpoint_now() fail.
        if isinstance(percentage, bool) or not isinstance(percentage, (int, float)) or not 0 <= percentage <= 100:
            raise HubError("VALIDATION", f"progress must be a number from 0 to 100; got {percentage!r}")
        self._percentage = percentage
        await self._progress(percentage, message, details)

    async def checkpoint_now(self, details: Any) -> None:
        """Saves a checkpoint without changing the percentage."""
        await self._progress(self._percentage, None, details)

    async def heartbeat(self) -> bool:
        """Renews this attempt's lease now; False when the hub no longer gives it to this agent."""
        return await self._heartbeat()

    async def add_data_reference(self, path: str, **ref: Any) -> dict[str, Any]:
        """Registers data this attempt produced; the hub records this agent, work order and attempt as its provenance."""
        return await self._add_data({**ref, "path": path})


class SyncTaskContext:
    """What a plain (non-async) handler gets: the same calls, blocking; the handler runs in a worker thread."""

    def __init__(self, context: TaskContext, loop: asyncio.AbstractEventLoop) -> None:
        self._context = context
        self._loop = loop
        self.workflow_id = context.workflow_id
        self.work_order_id = context.work_order_id
        self.attempt = context.attempt
        self.checkpoint = context.checkpoint
        #: Set when the hub cancels or takes back this attempt.
        self.cancelled = threading.Event()

    @property
    def cancel_reason(self) -> str | None:
        """Why the attempt was cancelled (None while it was not)."""
        return self._context.cancel_reason

    def _wait(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Runs `coroutine` on the agent's loop and blocks until it is done; refused on that loop's own thread, which it would block for ever."""
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            coroutine.close()
            raise RuntimeError("a blocking task context was called on the agent's event loop (a plain function that returned "
                               "an awaitable gets one): declare the handler `async def` so that it gets the async context")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def progress(self, percentage: float, message: str | None = None, details: Any = None) -> None:
        """Reports progress (0..100); blocks until the hub has it."""
        self._wait(self._context.progress(percentage, message, details))

    def checkpoint_now(self, details: Any) -> None:
        """Saves a checkpoint without changing the percentage."""
        self._wait(self._context.checkpoint_now(details))

    def heartbeat(self) -> bool:
        """Renews this attempt's lease now; False when it is no longer this agent's."""
        return self._wait(self._context.heartbeat())

    def add_data_reference(self, path: str, **ref: Any) -> dict[str, Any]:
        """Registers data this attempt produced."""
        return self._wait(self._context.add_data_reference(path, **ref))


#: A task handler: `async def handler(task, ctx)` (or a plain function, run in a thread with a SyncTaskContext).
Handler = Callable[[Task, Any], Union[Awaitable[Any], Any]]
