"""An agent's requests made in one turn of the event loop travel as one message (a `batch`)."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any, Callable

from hub import Hub
from scenario import agent, clients, close_all, started, unique
from switchboard import AgentClient, ControlClient, Task, TaskContext


def record_events(client: AgentClient | ControlClient) -> list[tuple[str, Any]]:
    """The events the client's socket emits from now on, with their payloads. A cost property: python-socketio has no hook for it."""
    sio = client.connection._sio
    emit = sio.emit
    sent: list[tuple[str, Any]] = []

    async def recording(name: str, *args: Any, **kwargs: Any) -> Any:
        sent.append((name, args[0] if args else None))
        return await emit(name, *args, **kwargs)

    sio.emit = recording
    return sent


def messages(sent: list[tuple[str, Any]]) -> list[str]:
    """The events record_events saw, a batch as `batch(event, event, …)`."""
    return [f"batch({', '.join(inner for inner, _ in payload)})" if name == "batch" else name for name, payload in sent]


async def run_together(hub: Hub, kind: str, ids: list[str], report: Callable[[Task, TaskContext], Any], user_query: str) -> tuple[AgentClient, list[tuple[str, Any]], dict[str, Any]]:
    """One agent with a slot per order runs `ids` at once; each awaits `report` once all have started. Returns the events it sent and the orders."""
    control, monitor = await clients(hub)
    worker = await agent(hub, kind, max_concurrent_tasks=len(ids))
    sent = record_events(worker)
    everyone_in = asyncio.Event()
    started_count = 0

    @worker.task(kind)
    async def together(task: Task, ctx: TaskContext) -> str:
        nonlocal started_count
        started_count += 1
        if started_count == len(ids):
            everyone_in.set()
        await everyone_in.wait()
        await report(task, ctx)
        return "done"

    await worker.ready()
    wf, mirror = await started(control, monitor, user_query)
    await wf.create_work_orders([{"id": order_id, "taskType": kind} for order_id in ids])
    done = await mirror.until(lambda state, _: all(state["workOrders"].get(i, {}).get("state") == "completed" for i in ids))
    return worker, sent, done["workOrders"]


async def test_the_progress_reports_of_tasks_that_resume_together_go_as_one_message(hub: Hub) -> None:
    async def half(_task: Task, ctx: TaskContext) -> None:
        await ctx.progress(50)

    _worker, sent, orders = await run_together(hub, unique("trio"), ["a", "b", "c"], half, "reports together")
    assert all((orders[i]["result"], orders[i]["attempts"]) == ("done", 1) for i in "abc")
    batches = [payload for name, payload in sent if name == "batch" and all(inner == "task.progress" for inner, _ in payload)]
    assert len(batches) == 1
    assert sorted((p["workOrderId"], p["progress"]) for _, p in batches[0]) == [("a", 50), ("b", 50), ("c", 50)]
    assert [name for name, _ in sent if name == "task.progress"] == []


async def test_a_batch_too_big_for_the_hub_to_read_is_sent_again_one_request_at_a_time_and_each_succeeds(tmp_path: Path) -> None:
    small = Hub(tmp_path, {"maxHttpBufferSize": 32 * 1024}).start()
    try:
        async def checkpoint(task: Task, ctx: TaskContext) -> None:
            # Each under the hub's 32 KiB, the two together over it.
            await ctx.checkpoint_now({"order": task.work_order_id, "rows": "r" * 20_000})

        _worker, sent, orders = await run_together(small, unique("pair"), ["a", "b"], checkpoint, "batch over the size")
        assert all((orders[i]["result"], orders[i]["attempts"]) == ("done", 1) for i in "ab")
        # The batch went first, was not read, and each went again alone.
        assert [name for name, _ in sent if name in ("batch", "task.progress")][:3] == ["batch", "task.progress", "task.progress"]
    finally:
        await close_all()
        small.stop()


def as_older_hub(worker: AgentClient) -> None:
    """Makes the agent's `batch` messages reach the hub under a name it does not know, as a hub from before batches sees them."""
    sio = worker.connection._sio
    emit = sio.emit

    async def renaming(name: str, *args: Any, **kwargs: Any) -> Any:
        return await emit("batch-unknown" if name == "batch" else name, *args, **kwargs)

    sio.emit = renaming


async def test_the_requests_of_a_batch_an_older_hub_does_not_understand_go_again_alone_and_each_succeeds(hub: Hub) -> None:
    worker = await agent(hub, unique("older"))
    as_older_hub(worker)
    sent = record_events(worker)
    notes = await asyncio.gather(*(worker.connection.request("agent.status", {"note": f"n{i}"}, timeout=5) for i in range(3)))
    assert [note["note"] for note in notes] == ["n0", "n1", "n2"]
    # The batch went once; its requests went again alone, in order, and the connection batches no more.
    assert [name for name, _ in sent] == ["batch", "agent.status", "agent.status", "agent.status"]
    await asyncio.gather(*(worker.connection.request("agent.status", {"note": f"m{i}"}, timeout=5) for i in range(2)))
    assert [name for name, _ in sent][4:] == ["agent.status", "agent.status"]


async def test_after_an_unencodable_batch_its_requests_go_again_before_any_made_later(hub: Hub) -> None:
    worker = await agent(hub, unique("nan-order"))
    sent: list[str] = []
    sio = worker.connection._sio
    emit = sio.emit

    async def recording(name: str, payload: Any, **kwargs: Any) -> Any:
        result = await emit(name, payload, **kwargs)  # recorded once encoded and queued for the wire
        sent.extend(str(p["note"]) for _, p in payload) if name == "batch" else sent.append(str(payload["note"]))
        return result

    sio.emit = recording
    # 102 in one turn: two messages, the first with a NaN (not JSON) in it.
    notes = [math.nan] + [f"n{i}" for i in range(1, 102)]
    outcomes = await asyncio.gather(*(worker.connection.request("agent.status", {"note": note}, timeout=5) for note in notes), return_exceptions=True)
    assert isinstance(outcomes[0], ValueError)
    assert sent == [f"n{i}" for i in range(1, 102)]


async def test_a_control_clients_writes_of_one_turn_go_as_one_message_and_a_read_alone_in_order(hub: Hub) -> None:
    control, _monitor = await clients(hub)
    wf = await control.create_workflow("control batches")
    sent = record_events(control)
    _a, _b, read, _c = await asyncio.gather(
        wf.create_work_order("t", id="a"), wf.create_work_order("t", id="b"), wf.get(), wf.create_work_order("t", id="c")
    )
    assert messages(sent) == ["batch(workOrder.create, workOrder.create)", "workflow.get", "workOrder.create"]
    # The read came after the two creates made before it (it may see the one after it: that one was not awaited).
    assert {"a", "b"} <= set(read["workOrders"])
    assert list((await wf.get())["workOrders"]) == ["a", "b", "c"]


async def test_a_read_made_the_turn_after_a_batch_was_flushed_does_not_go_before_it(hub: Hub) -> None:
    control, _monitor = await clients(hub)
    wf = await control.create_workflow("read after a flush")
    sent = record_events(control)

    async def read_next_turn() -> Any:
        # Made after the creates, in the turn their batch is flushed (and not emitted yet).
        await asyncio.sleep(0)
        return await wf.get()

    _a, _b, read = await asyncio.gather(wf.create_work_order("t", id="a"), wf.create_work_order("t", id="b"), read_next_turn())
    assert messages(sent) == ["batch(workOrder.create, workOrder.create)", "workflow.get"]
    assert {"a", "b"} <= set(read["workOrders"])


async def test_a_control_clients_data_registrations_go_alone(hub: Hub) -> None:
    control, _monitor = await clients(hub)
    wf = await control.create_workflow("files go alone")
    await wf.add_data_reference("s3://bucket/old.csv", id="old")
    sent = record_events(control)
    # The hub hashes a local file it is told of before it answers: batched, the creates beside it would wait for that.
    await asyncio.gather(
        wf.create_work_order("t", id="a"),
        wf.add_data_reference("s3://bucket/one.csv", id="one"),
        wf.add_data_references([{"id": "two", "path": "s3://bucket/two.csv"}]),
        wf.update_data_reference("old", path="s3://bucket/new.csv"),
        wf.create_work_order("t", id="b"),
        wf.create_work_order("t", id="c"),
    )
    assert messages(sent) == ["workOrder.create", "data.register", "data.registerMany", "data.update", "batch(workOrder.create, workOrder.create)"]


async def test_an_agents_data_registrations_and_completions_with_outputs_go_alone(hub: Hub) -> None:
    """The hub hashes the local files they name before it answers: batched, they would hold back the others."""
    batched: list[tuple[str, Any]] = []

    async def report(task: Task, ctx: TaskContext) -> None:
        if task.work_order_id == "register":
            await ctx.add_data_reference("s3://lake/registered.csv", id="registered")
        else:
            await ctx.progress(50)

    worker, sent, orders = await run_together(hub, unique("quartet"), ["p1", "p2", "register"], report, "data goes alone")
    for name, payload in sent:
        if name == "batch":
            batched.extend(payload)
    assert all(orders[i]["result"] == "done" for i in ("p1", "p2", "register"))
    assert [inner for inner, _ in batched if inner == "task.progress"] == ["task.progress", "task.progress"]
    assert [inner for inner, _ in batched if inner == "data.register"] == []
    assert "data.register" in [name for name, _ in sent]
    assert worker.connection._batchable("task.complete", {"outputs": [{"id": "x"}]}) is False
