"""A thin synchronous wrapper for scripts: the async clients run on an event loop in a background thread.

    from switchboard.sync import connect_control
    control = connect_control(url, token)
    wf = control.create_workflow(user_query="Analyse sales")
    wf.start()
"""

from __future__ import annotations

import asyncio
import copy
import functools
import inspect
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any, TypeVar

from . import agent, control, monitor
from .closing import ClosesOnExit
from .mirror import Mirror
from .monitor import MonitorClient

T = TypeVar("T")
_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_loop_thread: threading.Thread | None = None


def event_loop() -> asyncio.AbstractEventLoop:
    """The event loop the synchronous clients run on (started on first use, in a daemon thread)."""
    global _loop, _loop_thread
    with _lock:
        if _loop is None:
            loop = asyncio.new_event_loop()
            _loop_thread = threading.Thread(target=loop.run_forever, name="switchboard-loop", daemon=True)
            _loop_thread.start()
            _loop = loop
        return _loop


def _refuse_on_loop_thread(awaitable: Awaitable[Any]) -> None:
    """Raises when called on the loop's own thread (a listener or mirror callback), where waiting would block that loop for ever."""
    if threading.current_thread() is _loop_thread:
        if inspect.iscoroutine(awaitable):
            awaitable.close()
        raise RuntimeError("a blocking switchboard call was made on the clients' event loop thread (in a listener or mirror "
                           "callback), where it would wait for ever: make it from another thread")


def _wait_on_loop(awaitable: Awaitable[T]) -> T:
    """Runs `awaitable` on the clients' loop and blocks until it is done.

    Interrupted (Ctrl-C in the script), it is cancelled on the loop, and a client it connected all the same is closed:
    else a connect would go on in the background and leave an agent registered that nobody holds.
    """
    loop = event_loop()
    lock = threading.Lock()
    running: list[asyncio.Task[Any]] = []
    made: list[T] = []
    abandoned = False

    async def guarded() -> T:
        with lock:
            task = asyncio.current_task()
            if abandoned or task is None:
                if inspect.iscoroutine(awaitable):
                    awaitable.close()
                raise asyncio.CancelledError
            running.append(task)
        result = await awaitable
        with lock:
            made.append(result)
            orphan = abandoned
        if orphan:
            await _close_orphan(result)
        return result
    try:
        # The interrupt may come before the future is in hand (the loop's thread can be quicker): the task is cancelled, not the future.
        return asyncio.run_coroutine_threadsafe(guarded(), loop).result()
    except BaseException:
        with lock:
            abandoned = True
            finished = bool(made)
        if finished:  # it ended as the wait was interrupted: what it made is nobody's
            asyncio.run_coroutine_threadsafe(_close_orphan(made[0]), loop)
        elif running:
            loop.call_soon_threadsafe(running[0].cancel)
        raise


async def _close_orphan(result: object) -> None:
    if isinstance(result, ClosesOnExit):
        await result.close()


def run(awaitable: Awaitable[T]) -> T:
    """Runs a coroutine on the clients' loop and returns its result."""
    _refuse_on_loop_thread(awaitable)
    return _wait_on_loop(awaitable)


def _iterate(iterator: AsyncIterator[Any]) -> Iterator[Any]:
    while True:
        try:
            yield _wrap(run(iterator.__anext__()))
        except StopAsyncIteration:
            return


def _is_sdk_object(value: Any) -> bool:
    # Not an error (`connection.last_error`): a script raises it and catches it as the HubError it is.
    return (type(value).__module__.startswith("switchboard.") and not isinstance(value, (type, BaseException))
            and hasattr(value, "__dict__"))


def _wrap(value: Any) -> Any:
    if isinstance(value, AsyncIterator):
        return _iterate(value)
    if isinstance(value, MappingProxyType):
        return BlockingMapping(value)  # a live view (subscribe_all's mirrors): its values are wrapped as they are read
    # A dict or list of SDK objects (monitor.docs): those objects block too. Plain data (a mirror's state) is left as it is.
    if isinstance(value, dict) and any(_is_sdk_object(item) for item in value.values()):
        return {key: _wrap(item) for key, item in value.items()}
    if isinstance(value, list) and any(_is_sdk_object(item) for item in value):
        return [_wrap(item) for item in value]
    if inspect.isfunction(value) or inspect.ismethod(value) or isinstance(value, functools.partial):
        return _on_loop(value)
    if isinstance(value, Mirror):
        return BlockingMirror(value)
    if isinstance(value, MonitorClient):
        return BlockingMonitor(value)
    if _is_sdk_object(value):
        return Blocking(value)
    return value


def _wrap_result(result: Any, args: tuple[Any, ...]) -> Any:
    # A decorator (`@agent.task(...)`) hands back the caller's own function: it stays theirs, not one run on the loop's thread.
    if any(result is arg for arg in args):
        return result
    return _wrap(result)


def _on_loop(function: Callable[..., Any]) -> Callable[..., Any]:
    """`function` called on the loop's thread; a coroutine it returns is awaited there."""
    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        if threading.current_thread() is _loop_thread:
            # A callback on the loop's thread: what needs no waiting (a handle, a snapshot) runs here and now.
            result = function(*args, **kwargs)
            if inspect.isawaitable(result):
                _refuse_on_loop_thread(result)
            return _wrap_result(result, args)

        async def invoke() -> Any:
            result = function(*args, **kwargs)
            return await result if inspect.isawaitable(result) else result
        return _wrap_result(_wait_on_loop(invoke()), args)
    return call


class Blocking:
    """An SDK object whose methods block until done; attributes read through (a mirror's `state`, `version`)."""

    def __init__(self, target: Any) -> None:
        object.__setattr__(self, "_target", target)

    def __getattr__(self, name: str) -> Any:
        return _wrap(getattr(self._target, name))

    def __repr__(self) -> str:
        return f"Blocking({self._target!r})"

    def __enter__(self) -> Blocking:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BlockingMirror(Blocking):
    """A mirror whose `state`, and what `until` returns, are copies: the loop's thread patches the live state in place meanwhile."""

    @property
    def state(self) -> Any:
        """A deep copy of the state, taken on the loop's thread (the live one may change while a script reads it)."""
        return _on_loop(self._target.snapshot)()

    def until(self, predicate: Callable[[Any, int], bool], timeout: float = 30.0) -> Any:
        """Blocks until `predicate(state, version)` holds; returns a copy of the state it held for."""
        held: list[Any] = []

        def holds(state: Any, version: int) -> bool:
            # Copied at the check, on the loop's thread: the live state may have moved on by the time the caller wakes.
            if not bool(predicate(state, version)):
                return False
            held[:] = [copy.deepcopy(state)]
            return True
        run(self._target.until(holds, timeout))
        return held[0]


class BlockingMonitor(Blocking):
    """A monitor whose `doc` listeners get mirrors that block, as those `subscribe` returns."""

    def on(self, event: str, listener: Callable[[Any], None]) -> Callable[[], None]:
        """`change` (a MirrorChange of any mirror) or `doc` (a new mirror appeared); returns a function that stops it."""
        def deliver(value: Any) -> None:
            # A script keeps the mirror to wait on later: its until() must block, not hand back a coroutine.
            listener(BlockingMirror(value) if isinstance(value, Mirror) else value)
        off: Callable[[], None] = _on_loop(self._target.on)(event, deliver)
        return off


class BlockingMapping(Mapping[Any, Any]):
    """A read-only live mapping of SDK objects (subscribe_all's mirrors) whose values block as `Blocking` does."""

    def __init__(self, target: Mapping[Any, Any]) -> None:
        self._target = target

    def __getitem__(self, key: Any) -> Any:
        return _wrap(self._target[key])

    def __iter__(self) -> Iterator[Any]:
        # The keys as they are now: the loop's thread may add one meanwhile.
        return iter(list(self._target))

    def __len__(self) -> int:
        return len(self._target)

    def __repr__(self) -> str:
        return f"BlockingMapping({self._target!r})"


def connect_control(url: str | Sequence[str], token: str, **options: Any) -> Any:
    """Connects a control client whose methods block."""
    return Blocking(run(control.connect_control(url, token, **options)))


def connect_agent(url: str | Sequence[str], token: str, **options: Any) -> Any:
    """Connects an agent whose methods block; its handlers may be plain functions (run in threads)."""
    return Blocking(run(agent.connect_agent(url, token, **options)))


def connect_monitor(url: str | Sequence[str], token: str, **options: Any) -> Any:
    """Connects a monitor whose methods block; mirror callbacks run on the clients' loop thread."""
    return BlockingMonitor(run(monitor.connect_monitor(url, token, **options)))
