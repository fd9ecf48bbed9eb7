"""Big replies: a body over 1 MB comes as a `transfer`, read part by part with `transfer.read`."""

from __future__ import annotations

import codecs
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from .connection import Connection
from .errors import HubError

T = TypeVar("T")
#: How many times a request is made whose reply's transfer went before it was read.
TRANSFER_TRIES = 3


async def read_transfer(connection: Connection, transfer: dict[str, Any], timeout: float | None = None) -> str:
    """Reads every part of a transfer and returns its text (UTF-8); `timeout` is each part's."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    text = []
    parts = int(transfer["parts"])
    for part in range(parts):
        reply = await connection.request("transfer.read", {"id": transfer["id"], "part": part}, timeout)
        data = reply["data"]
        text.append(decoder.decode(data if isinstance(data, bytes) else bytes(data), final=part == parts - 1))
    return "".join(text)


async def with_body(connection: Connection, reply: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
    """A report reply with its `body` in place, read from its transfer when it came as one."""
    transfer = reply.pop("transfer", None)
    if transfer is not None:
        reply["body"] = await read_transfer(connection, transfer, timeout)
    reply.setdefault("body", "")
    return reply


async def inline_or_transfer(connection: Connection, value: Any, transfer: dict[str, Any] | None, timeout: float | None = None) -> Any:
    """A value sent inline or, when big, as a transfer of its JSON."""
    return json.loads(await read_transfer(connection, transfer, timeout)) if transfer is not None else value


async def read_whole(ask: Callable[[], Awaitable[dict[str, Any]]], read: Callable[[dict[str, Any]], Awaitable[T]]) -> T:
    """`read` of the reply `ask` gets, asked again when its transfer went before it was read: a transfer is its connection's, and
    a drop (or a minute, or 64 newer ones) takes it; its NOT_FOUND says nothing of the workflow asked for."""
    tries = 1
    while True:
        reply = await ask()
        transferred = reply.get("transfer") is not None
        try:
            return await read(reply)
        except HubError as error:
            if error.code != "NOT_FOUND" or not transferred or tries == TRANSFER_TRIES:
                raise
        tries += 1
