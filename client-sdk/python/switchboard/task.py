"""What a task handler deals with: the task, its context, and what it may return."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Union


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
        """Reports progress (0..100); `details` become the checkpoint handed to a later attempt."""
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

    def progress(self, percentage: float, message: str | None = None, details: Any = None) -> None:
        """Reports progress (0..100); blocks until the hub has it."""
        asyncio.run_coroutine_threadsafe(self._context.progress(percentage, message, details), self._loop).result()

    def checkpoint_now(self, details: Any) -> None:
        """Saves a checkpoint without changing the percentage."""
        asyncio.run_coroutine_threadsafe(self._context.checkpoint_now(details), self._loop).result()

    def heartbeat(self) -> bool:
        """Renews this attempt's lease now; False when it is no longer this agent's."""
        return asyncio.run_coroutine_threadsafe(self._context.heartbeat(), self._loop).result()

    def add_data_reference(self, path: str, **ref: Any) -> dict[str, Any]:
        """Registers data this attempt produced."""
        return asyncio.run_coroutine_threadsafe(self._context.add_data_reference(path, **ref), self._loop).result()


#: A task handler: `async def handler(task, ctx)` (or a plain function, run in a thread with a SyncTaskContext).
Handler = Callable[[Task, Any], Union[Awaitable[Any], Any]]
