"""One attempt an agent runs: its handler, the context it gets, its progress stream and its cancellation."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from .errors import HubError, NonRetryableError
from .logger import log
from .own_thread import run_in_own_thread
from .payloads import fields
from .progress import ProgressStream
from .task import Handler, SyncTaskContext, Task, TaskContext, TaskResult


#: Sends a request once the agent is registered on the current connection.
Send = Callable[[str, dict[str, Any]], Awaitable[Any]]


class Attempt:
    """Runs one handler for one offered attempt and says which report to make of it."""

    def __init__(self, assignment: dict[str, Any], send: Send, heartbeat: Callable[[str], Awaitable[bool]], agent_id: str) -> None:
        self.task = Task.from_assignment(assignment)
        self._send = send
        self._agent_id = agent_id
        self._ref = {"workflowId": self.task.workflow_id, "workOrderId": self.task.work_order_id, "attemptToken": self.task.attempt_token}
        #: Whether anything was sent about the attempt (a report accepts an offered one), or its handler has finished.
        self.reported = False
        self._stream = ProgressStream(self._send_progress)
        self._heartbeat = heartbeat
        self.context = TaskContext(self.task, self._progress, self._beat, self._add_data)
        self._sync_context: SyncTaskContext | None = None

    @property
    def aborted(self) -> bool:
        """Whether the attempt was taken away (its report is no longer ours to make)."""
        return self.context.cancelled.is_set()

    def abort(self, reason: str) -> None:
        """Stops the attempt: its cancellation event is set and whoever waits on its progress gets STALE_ATTEMPT."""
        if self.aborted:
            return
        self.context.cancel_reason = reason
        self.context.cancelled.set()
        if self._sync_context is not None:
            self._sync_context.cancelled.set()
        self._stream.stop(HubError("STALE_ATTEMPT", reason))

    def _send_progress(self, update: dict[str, Any]) -> Awaitable[Any]:
        self.reported = True
        return self._send("task.progress", update)

    async def _progress(self, percentage: float, message: str | None, details: Any) -> None:
        # Marked now, not when the stream's task sends it: the accept check after the handler's first step runs before that task does.
        self.reported = True
        await self._stream.push({**self._ref, **fields({"progress": percentage, "message": message, "details": details})})

    def _beat(self) -> Awaitable[bool]:
        # A heartbeat for the token accepts an offered attempt as a report does.
        self.reported = True
        return self._heartbeat(self.task.attempt_token)

    async def _add_data(self, ref: dict[str, Any]) -> dict[str, Any]:
        self.reported = True
        return (await self._send("data.register", {**fields(ref), **self._ref}))["item"]  # type: ignore[no-any-return]

    async def run(self, handler: Handler) -> tuple[str, dict[str, Any]] | None:
        """Runs the handler; returns the report to make (event, payload), or None when the attempt was aborted meanwhile."""
        task = self.task
        try:
            if _is_async(handler):
                outcome = await handler(task, self.context)
            else:
                self._sync_context = SyncTaskContext(self.context, asyncio.get_running_loop())
                if self.aborted:
                    self._sync_context.cancelled.set()
                outcome = await run_in_own_thread(handler, task, self._sync_context, name=f"switchboard-task-{task.work_order_id}")
                if inspect.isawaitable(outcome):
                    outcome = await outcome
        except (Exception, asyncio.CancelledError) as error:  # noqa: BLE001 - a handler's failure is the attempt's
            current = asyncio.current_task()
            if isinstance(error, asyncio.CancelledError) and current is not None and current.cancelling():
                raise  # the agent is closing: this task is being cancelled, not failed by its handler
            self.reported = True
            if self.aborted:
                return None
            # A checkpoint the handler saved just before it raised goes first: the next attempt resumes from it.
            await self._stream.send_pending()
            if self.aborted:
                return None
            self._stream.stop(HubError("INVALID_TRANSITION", "the task has failed"))
            retryable = not isinstance(error, NonRetryableError)
            log.error(
                "switchboard: agent %s: the %r handler raised on work order %s of workflow %s (attempt %s); the attempt fails%s",
                self._agent_id, task.task_type, task.work_order_id, task.workflow_id, task.attempt,
                "" if retryable else " without retrying", exc_info=error,
            )
            message = (str(error) or type(error).__name__)[:10_000]
            return "task.fail", {**self._ref, "error": message, "retryable": retryable}
        self.reported = True
        if self.aborted:
            return None
        self._stream.stop(HubError("INVALID_TRANSITION", "the task has finished"))
        payload: dict[str, Any] = dict(self._ref)
        if isinstance(outcome, TaskResult):
            if outcome.result is not None:
                payload["result"] = outcome.result
            if outcome.outputs:
                payload["outputs"] = [fields(output) for output in outcome.outputs]
        elif outcome is not None:
            payload["result"] = outcome
        return "task.complete", payload


def _is_async(handler: Handler) -> bool:
    """Whether `handler` is a coroutine function, or an object whose `__call__` is one (it gets the async context)."""
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(getattr(handler, "__call__", None))
