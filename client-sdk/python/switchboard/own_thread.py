"""Runs a plain function in a thread of its own, not in the event loop's shared default executor."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast

T = TypeVar("T")


async def run_in_own_thread(function: Callable[..., T], *args: Any, name: str) -> T:
    """`function(*args)` in a new thread; returns (or raises) what it did.

    Not asyncio.to_thread: sync handlers may fill the default executor (cpu_count + 4 threads), which the loop
    also needs to resolve the hub's host name on a reconnect; their blocking context calls wait for that reconnect.
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()
    context = contextvars.copy_context()

    def settle(result: T | None, error: BaseException | None) -> None:
        if done.done():
            return  # the waiting task was cancelled (the agent closed): nobody wants the outcome
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(cast(T, result))

    def work() -> None:
        result: T | None = None
        error: BaseException | None = None
        try:
            result = context.run(function, *args)
        except BaseException as raised:  # noqa: BLE001 - handed to the awaiting task
            error = raised
        try:
            loop.call_soon_threadsafe(settle, result, error)
        except RuntimeError:
            pass  # the loop is closed: the program ended while the function ran

    threading.Thread(target=work, name=name).start()
    return await done
