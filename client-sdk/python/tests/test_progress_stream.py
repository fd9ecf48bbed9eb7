"""The progress stream on its own: what it sends, against a wire whose answers the test gives."""

from __future__ import annotations

import asyncio
from typing import Any

from switchboard.errors import HubError
from switchboard.progress import ProgressStream


def held_sends() -> tuple[ProgressStream, list[dict[str, Any]], list[asyncio.Future[None]]]:
    """A stream whose every update is recorded and answered only when the test sets its future."""
    sent: list[dict[str, Any]] = []
    answers: list[asyncio.Future[None]] = []

    async def send(update: dict[str, Any]) -> None:
        sent.append(update)
        answer: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        answers.append(answer)
        await answer

    return ProgressStream(send), sent, answers


async def test_a_coalesced_update_keeps_the_checkpoint_and_message_the_newer_one_leaves_out() -> None:
    stream, sent, answers = held_sends()
    first = asyncio.ensure_future(stream.push({"progress": 10}))
    while not answers:
        await asyncio.sleep(0)
    # While the first is in flight: a checkpoint, then a newer update without details.
    checkpoint = asyncio.ensure_future(stream.push({"progress": 20, "message": "loading", "details": {"offset": 600}}))
    later = asyncio.ensure_future(stream.push({"progress": 30}))
    await asyncio.sleep(0)
    answers[0].set_result(None)
    await first
    while len(answers) < 2:
        await asyncio.sleep(0)
    assert sent[1] == {"progress": 30, "message": "loading", "details": {"offset": 600}}
    answers[1].set_result(None)
    await asyncio.gather(checkpoint, later)
    assert len(sent) == 2


async def test_send_pending_sends_the_update_coalesced_behind_one_in_flight_before_the_stream_stops() -> None:
    stream, sent, answers = held_sends()
    first = asyncio.ensure_future(stream.push({"progress": 10}))
    while not answers:
        await asyncio.sleep(0)
    checkpoint = asyncio.ensure_future(stream.push({"progress": 20, "details": {"offset": 2}}))
    await asyncio.sleep(0)
    # The handler raised: what waits goes out before the failure is reported.
    pending = asyncio.ensure_future(stream.send_pending())
    answers[0].set_result(None)
    while len(answers) < 2:
        await asyncio.sleep(0)
    assert not pending.done()
    answers[1].set_result(None)
    await asyncio.gather(first, checkpoint, pending)
    assert sent == [{"progress": 10}, {"progress": 20, "details": {"offset": 2}}]
    await stream.send_pending()  # nothing waits: returns at once
    assert len(sent) == 2


async def test_an_update_the_hub_refused_as_rate_limited_is_sent_again_after_a_pause_and_resolves() -> None:
    sent: list[dict[str, Any]] = []

    async def send(update: dict[str, Any]) -> None:
        sent.append(update)
        if len(sent) == 1:
            raise HubError("RATE_LIMITED", "too many requests")

    stream = ProgressStream(send)
    await stream.push({"progress": 10})
    # Sent again (after SEND_AGAIN_AFTER_S), not handed to the task as a failure.
    assert sent == [{"progress": 10}, {"progress": 10}]
