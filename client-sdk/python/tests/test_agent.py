"""An agent takes pushed work: results and outputs, progress, retries with the checkpoint, cancellation, heartbeats."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

from hub import CONFIG, Hub
import pytest
from scenario import agent, clients, close_all, drop, requests_made, started, unique, until
from switchboard import AgentClient, HubError, NonRetryableError, Task, TaskContext, TaskReport, TaskResult


async def test_an_agent_completes_work_with_its_result_outputs_and_progress(hub: Hub) -> None:
    control, monitor = await clients(hub)
    kind = unique("clean")
    worker = await agent(hub, kind, capabilities=["csv"])
    reports: list[TaskReport] = []
    worker.on("report", reports.append)

    @worker.task(kind)
    async def clean(task: Task, ctx: TaskContext) -> TaskResult:
        await ctx.progress(50, "half way", {"offset": 1})
        await ctx.add_data_reference(f"s3://lake/{task.work_order_id}-draft.csv", id=f"{task.work_order_id}-draft")
        return TaskResult({"rows": task.input["rows"]}, outputs=[{"id": f"{task.work_order_id}-clean", "path": "s3://lake/clean.csv"}])

    await worker.ready()
    wf, mirror = await started(control, monitor, "clean some rows")
    order = await wf.create_work_order(kind, id="o1", input={"rows": 3}, requirements=["csv"])
    done = await mirror.until(lambda state, _: state["workOrders"]["o1"]["state"] == "completed")
    finished = done["workOrders"]["o1"]
    assert (finished["result"], finished["progress"], finished["checkpoint"]) == ({"rows": 3}, 100, {"offset": 1})
    assert finished["outputs"] == ["o1-draft", "o1-clean"] and order["id"] == "o1"
    assert (await wf.get_data_reference("o1-draft"))["provenance"]["agentId"] == worker.agent_id
    assert [(r.outcome, r.accepted) for r in reports] == [("completed", True)]


async def test_a_failed_attempt_is_retried_with_the_checkpoint_it_saved(hub: Hub) -> None:
    control, monitor = await clients(hub)
    kind = unique("train")
    worker = await agent(hub, kind)
    seen: list[tuple[int, Any]] = []

    @worker.task(kind)
    async def train(task: Task, ctx: TaskContext) -> dict[str, int]:
        seen.append((ctx.attempt, ctx.checkpoint))
        if ctx.attempt == 1:
            await ctx.progress(40, details={"epoch": 4})
            raise RuntimeError("out of memory")
        return {"epochs": 10}

    await worker.ready()
    wf, mirror = await started(control, monitor, "train a model")
    await wf.create_work_order(kind, id="train", max_attempts=3)
    state = await mirror.until(lambda s, _: s["workOrders"]["train"]["state"] == "completed")
    order = state["workOrders"]["train"]
    assert seen == [(1, None), (2, {"epoch": 4})]
    assert [entry["outcome"] for entry in order["history"]] == ["failed", "completed"]
    assert order["result"] == {"epochs": 10} and order["attempts"] == 2


async def test_a_checkpoint_saved_while_an_update_was_in_flight_just_before_the_handler_raised_is_handed_to_the_retry(hub: Hub) -> None:
    control, monitor = await clients(hub)
    kind = unique("rows")
    worker = await agent(hub, kind)

    @worker.task(kind)
    async def rows(task: Task, ctx: TaskContext) -> Any:
        if ctx.attempt == 2:
            return ctx.checkpoint
        # A loop that reports without waiting for the hub: the second update is coalesced while the first is in flight.
        for row in (1, 2):
            update = asyncio.ensure_future(ctx.progress(10 * row, f"row {row} done", {"offset": row}))
            update.add_done_callback(lambda done: done.cancelled() or done.exception())
            await asyncio.sleep(0)
        raise ValueError("row 3 is malformed")

    await worker.ready()
    wf, mirror = await started(control, monitor, "checkpoint, then raise")
    await wf.create_work_order(kind, id="job", max_attempts=2)
    state = await mirror.until(lambda s, _: s["workOrders"]["job"]["state"] in ("completed", "failed"))
    # Rows 1 and 2 were done and checkpointed before the raise: the retry resumes after row 2.
    assert (state["workOrders"]["job"]["state"], state["workOrders"]["job"]["result"]) == ("completed", {"offset": 2})


async def fails_for_good(hub: Hub, kind: str, handler: Callable[[Task, TaskContext], Awaitable[Any]]) -> dict[str, Any]:
    """Runs one order (maxAttempts 3) with `handler` and returns it once it failed."""
    control, monitor = await clients(hub)
    worker = await agent(hub, kind)
    worker.task(kind)(handler)
    await worker.ready()
    wf, mirror = await started(control, monitor, kind)
    await wf.create_work_order(kind, id="job", max_attempts=3)
    state = await mirror.until(lambda s, _: s["workOrders"]["job"]["state"] == "failed")
    order: dict[str, Any] = state["workOrders"]["job"]
    return order


async def test_a_non_retryable_error_fails_the_order_for_good(hub: Hub) -> None:
    async def parse(task: Task, ctx: TaskContext) -> None:
        raise NonRetryableError("bad input")

    order = await fails_for_good(hub, unique("parse"), parse)
    assert order["attempts"] == 1
    assert order["error"] == "failed (not retryable): bad input"


async def test_retry_work_order_runs_an_order_that_failed_for_good_again_once_and_refuses_a_completed_one(hub: Hub) -> None:
    control, monitor = await clients(hub)
    kind = unique("retried")
    worker = await agent(hub, kind)
    runs: list[int] = []

    @worker.task(kind)
    async def flaky(task: Task, ctx: TaskContext) -> str:
        runs.append(task.attempt)
        if len(runs) == 1:
            raise NonRetryableError("upstream down")
        return "done"

    await worker.ready()
    wf, mirror = await started(control, monitor, kind)
    await wf.create_work_order(kind, id="job", max_attempts=1)
    await mirror.until(lambda s, _: s["workOrders"]["job"]["state"] == "failed")
    retried = await wf.retry_work_order("job")
    assert (retried["attempts"], retried["retried"]["attempts"], retried["endedAt"]) == (1, 1, None)
    state = await mirror.until(lambda s, _: s["workOrders"]["job"]["state"] == "completed")
    order = state["workOrders"]["job"]
    assert (order["result"], [run["outcome"] for run in order["history"]], runs) == ("done", ["failed", "completed"], [1, 2])
    assert (state["workOrderCounts"]["completed"], state["workOrderCounts"]["failed"]) == (1, 0)
    with pytest.raises(HubError) as refused:
        await wf.retry_work_order("job")
    assert refused.value.code == "INVALID_TRANSITION"
    with pytest.raises(HubError) as missing:
        await wf.retry_work_order("nowhere")
    assert missing.value.code == "NOT_FOUND"


async def test_a_paused_workflow_is_offered_nothing_while_another_runs_and_its_order_runs_once_when_resumed(hub: Hub) -> None:
    control, monitor = await clients(hub)
    kind = unique("paused")
    worker = await agent(hub, kind)
    ran: list[str] = []

    @worker.task(kind)
    async def work(task: Task, ctx: TaskContext) -> str:
        ran.append(task.work_order_id)
        return "done"

    await worker.ready()
    wf, mirror = await started(control, monitor, "paused work")
    paused = await wf.pause("API budget")
    assert paused["paused"] is not None and (paused["paused"]["by"], paused["paused"]["reason"]) == ("py-admin", "API budget")
    assert await wf.pause() == paused
    await wf.create_work_order(kind, id="held")
    other, other_mirror = await started(control, monitor, "other work")
    await other.create_work_order(kind, id="theirs")
    # The one free slot took the younger order of the other workflow: the held one was not offered.
    await other_mirror.until(lambda s, _: s["workOrders"]["theirs"]["state"] == "completed")
    assert ran == ["theirs"]
    assert (await mirror.until(lambda s, _: s["paused"] is not None))["workOrders"]["held"]["state"] == "queued"
    assert (await wf.resume())["paused"] is None
    done = await mirror.until(lambda s, _: s["workOrders"]["held"]["state"] == "completed")
    assert (ran, done["paused"], done["workOrders"]["held"]["attempts"]) == (["theirs", "held"], None, 1)
    await wf.cancel()
    with pytest.raises(HubError) as ended:
        await wf.pause()
    assert ended.value.code == "INVALID_TRANSITION"


async def test_a_result_that_cannot_be_sent_fails_the_order_for_good(hub: Hub) -> None:
    async def count(task: Task, ctx: TaskContext) -> set[int]:
        return {1, 2}

    order = await fails_for_good(hub, unique("unsendable"), count)
    assert order["attempts"] == 1
    assert order["error"] == "failed (not retryable): the completion could not be sent: Object of type set is not JSON serializable"


async def test_a_result_holding_nan_fails_the_order_for_good_without_dropping_the_connection(hub: Hub) -> None:
    async def score(task: Task, ctx: TaskContext) -> dict[str, float]:
        return {"accuracy": float("nan")}

    # Sent as a bare NaN, the hub could not parse it and dropped the connection, and the agent resent it for ever.
    order = await fails_for_good(hub, unique("nan-result"), score)
    assert order["attempts"] == 1
    assert order["error"] == "failed (not retryable): the completion could not be sent: task.complete cannot be sent: result.accuracy is nan, which JSON cannot hold"


async def test_a_whole_number_beyond_2_to_the_53_that_the_hub_sent_goes_back_in_the_result_as_it_came(hub: Hub) -> None:
    control, monitor = await clients(hub)
    kind = unique("echo")
    worker = await agent(hub, kind)

    @worker.task(kind)
    async def echo(task: Task, ctx: TaskContext) -> Any:
        await ctx.checkpoint_now(task.input)
        return task.input

    await worker.ready()
    wf, mirror = await started(control, monitor, "a big whole number, there and back")
    # A JavaScript number, as a TypeScript producer sends one: the hub writes 2**60 as 1152921504606847000, which json reads as an int.
    await wf.create_work_order(kind, id="echo", input={"bytes": float(2**60)})
    sent = (await wf.get_work_order("echo"))["input"]
    assert sent == {"bytes": 1152921504606847000}
    state = await mirror.until(lambda s, _: s["workOrders"]["echo"]["state"] in ("completed", "failed"))
    order = state["workOrders"]["echo"]
    assert (order["state"], order["result"], order["checkpoint"], order["error"]) == ("completed", sent, sent, None)


async def test_a_completion_too_big_for_the_hub_to_read_fails_the_order_for_good_instead_of_being_resent_for_ever(tmp_path: Path) -> None:
    small = Hub(tmp_path, {"maxHttpBufferSize": 32 * 1024}).start()
    try:
        progress_error: list[BaseException] = []

        async def huge(task: Task, ctx: TaskContext) -> str:
            # Within the bounds of details (64 KiB) and result (256 KiB), over the hub's message size.
            try:
                await ctx.progress(50, "half", {"rows": "r" * 40_000})
            except HubError as error:
                progress_error.append(error)
            return "x" * 100_000

        # Taken for a dropped connection before: the agent resent both after every reconnect, for ever.
        order = await fails_for_good(small, unique("huge"), huge)
        assert [(e.code, e.message.startswith("task.progress was not read by the hub")) for e in progress_error if isinstance(e, HubError)] == [("VALIDATION", True)]
        assert order["attempts"] == 1
        assert order["error"].startswith("failed (not retryable): the hub refused the completion: task.complete was not read by the hub: its message (about ")
    finally:
        await close_all()
        small.stop()


async def test_a_handler_that_raises_a_cancelled_error_of_its_own_fails_its_attempt_at_once(hub: Hub) -> None:
    control, monitor = await clients(hub)
    kind = unique("inner-cancel")
    worker = await agent(hub, kind)
    reports: list[TaskReport] = []
    worker.on("report", reports.append)

    @worker.task(kind)
    async def fetch(task: Task, ctx: TaskContext) -> None:
        # Awaiting a task someone cancelled raises CancelledError; the agent's own task is not being cancelled.
        inner = asyncio.get_running_loop().create_task(asyncio.sleep(60))
        inner.cancel()
        await inner

    await worker.ready()
    wf, mirror = await started(control, monitor, "an inner task cancelled")
    await wf.create_work_order(kind, id="fetch", max_attempts=1)
    state = await mirror.until(lambda s, _: s["workOrders"]["fetch"]["state"] == "failed")
    assert state["workOrders"]["fetch"]["error"] == "failed after 1 attempt(s): CancelledError"
    assert [(r.outcome, r.accepted) for r in reports] == [("failed", True)]


class Summarise:
    """A handler object whose `__call__` is a coroutine function."""

    async def __call__(self, task: Task, ctx: TaskContext) -> str:
        await ctx.progress(50)
        return "summarised"


async def test_a_handler_object_with_an_async_call_gets_the_async_context(hub: Hub) -> None:
    control, monitor = await clients(hub)
    kind = unique("callable")
    worker = await agent(hub, kind)
    worker.task(kind)(Summarise())
    await worker.ready()
    wf, mirror = await started(control, monitor, "a handler object")
    await wf.create_work_order(kind, id="sum")
    state = await mirror.until(lambda s, _: s["workOrders"]["sum"]["state"] == "completed")
    assert (state["workOrders"]["sum"]["result"], state["workOrders"]["sum"]["progress"]) == ("summarised", 100)


async def test_a_plain_function_returning_a_coroutine_that_uses_its_context_fails_instead_of_blocking_the_agent(hub: Hub) -> None:
    control, monitor = await clients(hub)
    kind = unique("wrapped")
    worker = await agent(hub, kind)

    async def body(task: Task, ctx: Any) -> str:
        await ctx.progress(50)
        return "unreachable"

    # A plain decorator's wrapper hides the coroutine function: the handler gets the blocking context, awaited on the loop.
    worker.task(kind)(lambda task, ctx: body(task, ctx))
    await worker.ready()
    wf, mirror = await started(control, monitor, "a wrapped coroutine")
    await wf.create_work_order(kind, id="wrapped", max_attempts=1)
    state = await mirror.until(lambda s, _: s["workOrders"]["wrapped"]["state"] == "failed")
    assert "declare the handler `async def`" in state["workOrders"]["wrapped"]["error"]


async def test_a_percentage_outside_0_to_100_is_refused_at_once_and_later_checkpoints_still_land(hub: Hub) -> None:
    control, monitor = await clients(hub)
    kind = unique("bad-progress")
    worker = await agent(hub, kind)
    refused: list[tuple[str, str]] = []

    @worker.task(kind)
    async def count(task: Task, ctx: TaskContext) -> str:
        await ctx.progress(30, details={"step": 1})
        for bad in (150, -1, float("nan")):
            try:
                await ctx.progress(bad, "bad")
            except HubError as error:
                refused.append((error.code, error.message))
        # Kept, the bad percentage went with every later checkpoint, and the hub refused each.
        await ctx.checkpoint_now({"step": 2})
        return "counted"

    await worker.ready()
    wf, mirror = await started(control, monitor, "report a bad percentage")
    await wf.create_work_order(kind, id="o1", max_attempts=1)
    done = await mirror.until(lambda state, _: state["workOrders"]["o1"]["state"] in ("completed", "failed"))
    assert [code for code, _ in refused] == ["VALIDATION"] * 3
    assert refused[0][1] == "progress must be a number from 0 to 100; got 150"
    order = done["workOrders"]["o1"]
    assert (order["state"], order["result"], order["checkpoint"]) == ("completed", "counted", {"step": 2})


async def test_a_registration_the_hub_refuses_is_raised_by_on_task_and_ready(hub: Hub) -> None:
    worker = await agent(hub, unique("refused"))

    async def never(task: Task, ctx: TaskContext) -> None:
        raise AssertionError("a refused task type is never offered")

    with pytest.raises(HubError) as refused:
        await worker.on_task("t" * 101, never)  # task types are at most 100 characters
    assert refused.value.code == "VALIDATION"
    worker.task("u" * 101)(never)
    with pytest.raises(HubError) as again:
        await worker.ready()
    assert again.value.code == "VALIDATION"


async def test_ready_raises_disconnected_when_the_agent_closes_before_its_handlers_are_registered(hub: Hub) -> None:
    async def never(task: Task, ctx: TaskContext) -> None:
        raise AssertionError("never offered")

    # Closed while the registration is on its way: close() cancels it, which is no cancellation of ready()'s caller.
    kind = unique("closed-while-registering")
    worker = await agent(hub, kind)
    sent, request = asyncio.Event(), worker.connection.request

    async def unanswered(event: str, payload: dict[str, Any], timeout: float | None = None) -> Any:
        if event == "agent.register":
            sent.set()
            await asyncio.Event().wait()  # the agent closes before the answer
        return await request(event, payload, timeout)

    worker.connection.request = unanswered  # type: ignore[method-assign]
    worker.task(kind)(never)
    waiting = asyncio.get_running_loop().create_task(worker.ready())
    await sent.wait()
    await worker.close()
    with pytest.raises(HubError) as closed:
        await waiting
    assert closed.value.code == "DISCONNECTED"

    # Closed before the registration went: ready() does not return as if the hub had the handler.
    kind = unique("closed-before-registering")
    other = await agent(hub, kind)
    other.task(kind)(never)
    waiting = asyncio.get_running_loop().create_task(other.ready())
    await other.close()
    with pytest.raises(HubError) as closed:
        await waiting
    assert closed.value.code == "DISCONNECTED"


async def test_a_task_type_the_hub_refused_is_dropped_so_later_handlers_register_and_take_work(hub: Hub) -> None:
    control, monitor = await clients(hub)
    kind = unique("after-refusal")
    worker = await agent(hub, kind)

    async def never(task: Task, ctx: TaskContext) -> None:
        raise AssertionError("a refused task type is never offered")

    async def run(task: Task, ctx: TaskContext) -> str:
        return "ran"

    with pytest.raises(HubError) as refused:
        await worker.on_task("t" * 101, never)
    assert refused.value.code == "VALIDATION"
    # Kept, the refused name went with this registration (and each after a reconnect), and the hub refused each.
    await worker.on_task(kind, run)
    wf, mirror = await started(control, monitor, "work after a refused task type")
    await wf.create_work_order(kind, id="job")
    state = await mirror.until(lambda s, _: s["workOrders"]["job"]["state"] == "completed")
    assert state["workOrders"]["job"]["result"] == "ran"


async def test_a_task_type_with_blanks_around_it_takes_the_work_the_hub_offers_under_the_trimmed_name(hub: Hub) -> None:
    control, monitor = await clients(hub)
    kind = unique("trimmed")
    worker = await agent(hub, kind)

    async def run(task: Task, ctx: TaskContext) -> str:
        return task.task_type

    await worker.on_task(f" {kind}\n", run)  # the hub registers it trimmed, and offers its orders so
    wf, mirror = await started(control, monitor, "a task type with blanks")
    await wf.create_work_order(kind, id="job")
    state = await mirror.until(lambda s, _: s["workOrders"]["job"]["state"] == "completed")
    assert (state["workOrders"]["job"]["result"], state["workOrders"]["job"]["declinedBy"]) == (kind, [])


async def test_cancelling_an_order_reaches_the_running_handler(hub: Hub) -> None:
    control, monitor = await clients(hub)
    kind = unique("crawl")
    worker = await agent(hub, kind)
    started = asyncio.Event()
    reasons: list[str | None] = []
    reports: list[TaskReport] = []
    worker.on("report", reports.append)

    @worker.task(kind)
    async def crawl(task: Task, ctx: TaskContext) -> None:
        started.set()
        await ctx.cancelled.wait()
        reasons.append(ctx.cancel_reason)

    await worker.ready()
    wf = await control.create_workflow("crawl")
    await wf.start()
    await wf.create_work_order(kind, id="crawl")
    await started.wait()
    cancelled = await wf.cancel_work_order("crawl", "not needed any more")
    assert cancelled["state"] == "cancelled"
    mirror = await monitor.subscribe("@agents")
    await mirror.until(lambda pool, _: bool(reasons) and worker.active_tasks == 0)
    assert reasons == ["cancelled by the hub: not needed any more"]
    assert reports == []  # a cancelled attempt is not reported


async def test_a_long_blocking_handler_keeps_its_lease_through_heartbeats(hub: Hub) -> None:
    control, monitor = await clients(hub)
    kind = unique("render")
    worker = await agent(hub, kind)

    @worker.task(kind)
    def render(task: Task, ctx: Any) -> str:
        # A plain function runs in a thread: the event loop keeps heartbeating while it blocks for 3 leases.
        time.sleep(3 * task.lease_ms / 1000)
        return "rendered"

    await worker.ready()
    wf, mirror = await started(control, monitor, "render")
    await wf.create_work_order(kind, id="render", timeouts={"lease_ms": 500})
    state = await mirror.until(lambda s, _: s["workOrders"]["render"]["state"] in ("completed", "failed"))
    order = state["workOrders"]["render"]
    assert (order["state"], order["attempts"], order["result"]) == ("completed", 1, "rendered")
    assert [entry["outcome"] for entry in order["history"]] == ["completed"]


def count_pushed_offers(worker: AgentClient) -> list[str]:
    """The work order ids the hub pushed to `worker` as `assignment` events (python-socketio keeps one handler per event: this wraps the agent's)."""
    pushed: list[str] = []
    take = worker._on_assignment

    async def counting(assignment: dict[str, Any]) -> dict[str, Any]:
        pushed.append(assignment["workOrderId"])
        return await take(assignment)

    worker.connection.on("assignment", counting)
    return pushed


async def test_a_queue_drains_on_one_slot_through_the_completion_replies(hub: Hub) -> None:
    control, monitor = await clients(hub)
    kind = unique("drain")
    worker = await agent(hub, kind)
    pushed = count_pushed_offers(worker)
    runs: dict[str, int] = {}

    @worker.task(kind)
    async def step(task: Task, ctx: TaskContext) -> str:
        runs[task.work_order_id] = runs.get(task.work_order_id, 0) + 1
        await ctx.progress(50)
        return task.work_order_id

    await worker.ready()
    wf = await control.create_workflow("a queue on one slot")
    mirror = await monitor.subscribe(wf.id)
    await wf.create_work_orders([{"id": f"o{i}", "task_type": kind} for i in range(12)])
    await wf.start()
    state = await mirror.until(lambda s, _: s["workOrderCounts"]["completed"] == 12)
    orders = sorted(state["workOrders"].values(), key=lambda order: int(order["id"][1:]))
    assert [(o["id"], o["attempts"], o["result"]) for o in orders] == [(f"o{i}", 1, f"o{i}") for i in range(12)]
    assert runs == {f"o{i}": 1 for i in range(12)}
    # The first order is pushed; each later one came in the reply to the report before it.
    assert pushed == ["o0"]


async def test_a_quiet_handler_of_a_carried_offer_is_accepted_as_it_starts(hub: Hub) -> None:
    control, monitor = await clients(hub)
    kind = unique("quiet")
    worker = await agent(hub, kind)
    pushed = count_pushed_offers(worker)
    running = asyncio.Event()

    @worker.task(kind)
    async def quiet(task: Task, ctx: TaskContext) -> str:
        if task.work_order_id == "quiet":
            await running.wait()  # reports nothing until the hub shows it running: only the SDK's accept gets it there
        return task.work_order_id

    await worker.ready()
    wf = await control.create_workflow("a quiet handler")
    mirror = await monitor.subscribe(wf.id)
    mirror.on_change(lambda _: mirror.state["workOrders"].get("quiet", {}).get("state") == "running" and running.set())
    # No heartbeat is due for minutes (half of acceptMs, a third of leaseMs): only an accept sent as the handler starts gets it running.
    quiet_timeouts = {"accept_ms": 300_000, "lease_ms": 600_000}
    await wf.create_work_orders([{"id": "loud", "task_type": kind, "timeouts": quiet_timeouts},
                                 {"id": "quiet", "task_type": kind, "timeouts": quiet_timeouts}])
    await wf.start()
    state = await mirror.until(lambda s, _: s["workOrderCounts"]["completed"] == 2)
    assert (state["workOrders"]["quiet"]["attempts"], state["workOrders"]["quiet"]["declinedBy"]) == (1, [])
    assert pushed == ["loud"]


async def test_no_accept_of_its_own_for_a_carried_offer_whose_handler_reports_progress_first(hub: Hub) -> None:
    control, monitor = await clients(hub)
    kind = unique("reports-first")
    worker = await agent(hub, kind)
    pushed = count_pushed_offers(worker)
    sent = requests_made(worker.connection)

    @worker.task(kind)
    async def step(task: Task, ctx: TaskContext) -> str:
        await ctx.progress(50)
        return task.work_order_id

    await worker.ready()
    wf = await control.create_workflow("handlers that report first")
    mirror = await monitor.subscribe(wf.id)
    # No heartbeat is due for minutes (half of acceptMs, a third of leaseMs): any heartbeat sent is an accept of the SDK's own.
    timeouts = {"accept_ms": 300_000, "lease_ms": 600_000}
    await wf.create_work_orders([{"id": f"o{i}", "task_type": kind, "timeouts": timeouts} for i in range(5)])
    await wf.start()
    await mirror.until(lambda s, _: s["workOrderCounts"]["completed"] == 5)
    # One slot: the first order pushed, the other four carried in completion replies; their progress accepted them.
    assert pushed == ["o0"]
    assert sent.count("task.complete") == 5
    assert [event for event in sent if event == "agent.heartbeat"] == []


async def test_an_offer_reaching_a_closing_agent_is_withdrawn_with_its_connection_not_held_against_it(hub: Hub) -> None:
    control, monitor = await clients(hub)
    kind = unique("closing")
    worker = await agent(hub, kind)
    offered = asyncio.Event()
    take = worker._on_assignment

    async def noting(assignment: dict[str, Any]) -> dict[str, Any] | None:
        offered.set()
        return await take(assignment)

    worker.connection.on("assignment", noting)
    # close() is held before the socket closes, so that an offer reaches the agent while it is closing.
    gate, shut = asyncio.Event(), worker.connection.close

    async def held_close() -> None:
        await gate.wait()
        await shut()

    worker.connection.close = held_close  # type: ignore[method-assign]

    @worker.task(kind)
    async def never(task: Task, ctx: TaskContext) -> None:
        raise AssertionError("a closing agent runs nothing")

    await worker.ready()
    pool = await monitor.subscribe("@agents")
    closing = asyncio.get_running_loop().create_task(worker.close())
    await worker.wait_closed()
    wf, _ = await started(control, monitor, "an offer while closing")
    await wf.create_work_order(kind, id="late")
    await offered.wait()
    gate.set()
    await closing
    # The hub saw the connection go (after any answer it sent before it): what the offer cost the agent is settled.
    await pool.until(lambda agents, _: agents[worker.agent_id]["disconnectedSince"] is not None)
    order = await wf.get_work_order("late")
    assert (order["state"], order["declinedBy"], order["attempts"]) == ("queued", [], 0)


async def test_a_new_process_under_a_draining_agent_id_starts_drained_says_so_and_resumes(hub: Hub, caplog: pytest.LogCaptureFixture) -> None:
    control, monitor = await clients(hub)
    kind = unique("redeploy")
    old = await agent(hub, kind)
    await old.drain()
    await old.close()
    with caplog.at_level(logging.WARNING, logger="switchboard"):
        fresh = await agent(hub, kind, agent_id=old.agent_id)
    # Draining belongs to the agent id: the new process learns it from its registration's reply, and says so once.
    assert fresh.draining
    assert [r.getMessage() for r in caplog.records if "draining on the hub" in r.getMessage()] == [
        f"switchboard: agent {old.agent_id} is draining on the hub (set under this agent id before, or by a control client): it takes no new work until resume()"
    ]

    @fresh.task(kind)
    async def run(task: Task, ctx: TaskContext) -> str:
        return "fresh"

    await fresh.ready()
    wf, mirror = await started(control, monitor, "drain across a redeploy")
    await wf.create_work_order(kind, id="job")
    await fresh.resume()
    assert not fresh.draining
    state = await mirror.until(lambda s, _: s["workOrders"]["job"]["state"] == "completed")
    assert (state["workOrders"]["job"]["result"], state["workOrders"]["job"]["declinedBy"]) == ("fresh", [])


async def test_an_agent_whose_drain_the_hub_refused_keeps_taking_work(tmp_path: Path) -> None:
    limited = Hub(tmp_path)
    # One request a connection: the agent's registration. Its drain() is then refused before it is applied.
    limited.config_file.write_text(json.dumps({**CONFIG, "rateLimit": {"perSecond": 0.001, "burst": 1}}))
    limited.start()
    try:
        worker = await agent(limited, unique("refused-drain"))
        with pytest.raises(HubError) as refused:
            await worker.drain()
        assert refused.value.code == "RATE_LIMITED"
        assert not worker.draining
    finally:
        # Its clients leave first: a hub stopping with an agent still connected waits for it.
        await close_all()
        limited.stop()


async def drained_worker(hub: Hub, kind: str) -> AgentClient:
    """A registered agent of task type `kind` (its handler answers "back") that has drained itself."""
    worker = await agent(hub, kind)

    @worker.task(kind)
    async def run(task: Task, ctx: TaskContext) -> str:
        return "back"

    await worker.ready()
    await worker.drain()
    return worker


async def test_a_control_client_drains_and_reactivates_a_connected_agent_which_is_told_at_once(hub: Hub) -> None:
    control, monitor = await clients(hub)
    kind = unique("operator")
    worker = await drained_worker(hub, kind)
    told: asyncio.Queue[bool] = asyncio.Queue()
    worker.on("draining", told.put_nowait)
    # The hub pushes the operator's word to the connected agent, which wins over its own drain().
    await control.update_agent_status(worker.agent_id, status="active")
    assert await told.get() is False and not worker.draining
    await control.update_agent_status(worker.agent_id, status="draining")
    assert await told.get() is True and worker.draining
    await control.update_agent_status(worker.agent_id, status="active")
    assert await told.get() is False
    wf, mirror = await started(control, monitor, "reactivated by an operator")
    await wf.create_work_order(kind, id="job")
    state = await mirror.until(lambda s, _: s["workOrders"]["job"]["state"] == "completed")
    assert (state["workOrders"]["job"]["result"], state["workOrders"]["job"]["declinedBy"]) == ("back", [])
    assert told.empty()


async def test_a_logging_handler_that_raises_does_not_stop_the_failure_report(hub: Hub, capsys: pytest.CaptureFixture[str]) -> None:
    control, monitor = await clients(hub)
    kind = unique("broken-log")
    worker = await agent(hub, kind)
    reports: list[TaskReport] = []
    worker.on("report", reports.append)

    class Broken(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            raise OSError("the log collector is down")

    @worker.task(kind)
    async def flaky(task: Task, ctx: TaskContext) -> str:
        if task.attempt == 1:
            raise RuntimeError("first try fails")
        return "second try"

    await worker.ready()
    broken = Broken()
    logging.getLogger("switchboard").addHandler(broken)
    try:
        wf, mirror = await started(control, monitor, "log through a broken handler")
        await wf.create_work_order(kind, id="job", max_attempts=2)
        # The SDK logs the handler's error, the logging handler raises, and the failure is reported all the same.
        await until(lambda: [(r.outcome, r.accepted) for r in reports] == [("failed", True), ("completed", True)], "both reports", timeout=10)
    finally:
        logging.getLogger("switchboard").removeHandler(broken)
    order = await wf.get_work_order("job")
    assert (order["state"], order["result"]) == ("completed", "second try")
    assert "the log collector is down" in capsys.readouterr().err


async def test_an_agent_whose_id_another_process_took_says_in_its_log_that_it_takes_no_more_work(hub: Hub, caplog: pytest.LogCaptureFixture) -> None:
    kind = unique("taken-over")
    old = await agent(hub, kind)
    errors: list[HubError] = []
    old.on("error", errors.append)
    with caplog.at_level(logging.ERROR, logger="switchboard"):
        await agent(hub, kind, agent_id=old.agent_id)
        await asyncio.wait_for(old.wait_closed(), 10)
    assert [error.code for error in errors] == ["DISCONNECTED"]
    assert [r.getMessage() for r in caplog.records if "takes no more work" in r.getMessage()] == [
        f"switchboard: agent {old.agent_id} takes no more work: the hub closed this connection "
        "(another connection registered this agent id, or the token was revoked)"
    ]


async def running_job(hub: Hub, title: str, result: str = "done") -> tuple[Any, ...]:
    """(control, monitor, kind, agent, release, wf, mirror): a started workflow whose order "running" runs on a fresh agent of
    two slots until `release` is set, then gives `result`."""
    control, monitor = await clients(hub)
    kind = unique("finish")
    old = await agent(hub, kind, max_concurrent_tasks=2)
    release = asyncio.Event()

    @old.task(kind)
    async def run(task: Task, ctx: TaskContext) -> str:
        if task.work_order_id == "running":
            await release.wait()
        return result

    await old.ready()
    wf, mirror = await started(control, monitor, title)
    await wf.create_work_order(kind, id="running")
    await mirror.until(lambda s, _: s["workOrders"]["running"]["state"] == "running")
    return control, monitor, kind, old, release, wf, mirror


async def test_close_with_finish_runs_the_task_to_its_end_and_leaves_the_agent_id_taking_work(hub: Hub) -> None:
    control, monitor, kind, old, release, wf, mirror = await running_job(hub, "a deploy while a task runs", "finished by the leaving process")
    closing = asyncio.ensure_future(old.close(finish=True))
    pool = await monitor.subscribe("@agents")
    await pool.until(lambda s, _: s[old.agent_id]["status"] == "draining")
    # A free slot, but no new work while it finishes.
    await wf.create_work_order(kind, id="later")
    assert (await wf.get_work_order("later"))["state"] == "queued"
    release.set()
    await closing
    state = await mirror.until(lambda s, _: s["workOrders"]["running"]["state"] == "completed")
    assert (state["workOrders"]["running"]["result"], state["workOrders"]["running"]["attempts"]) == ("finished by the leaving process", 1)
    # The drain was the connection's: the next process under the id takes work at once.
    await pool.until(lambda s, _: s[old.agent_id]["status"] != "draining")
    fresh = await agent(hub, kind, agent_id=old.agent_id)
    assert not fresh.draining

    @fresh.task(kind)
    async def again(task: Task, ctx: TaskContext) -> str:
        return "the next process"

    await fresh.ready()
    state = await mirror.until(lambda s, _: s["workOrders"]["later"]["state"] == "completed")
    assert (state["workOrders"]["later"]["result"], state["workOrders"]["later"]["declinedBy"]) == ("the next process", [])


async def test_close_with_finish_across_a_reconnect_holds_no_offer_against_the_agent_id(hub: Hub) -> None:
    control, monitor, kind, old, release, wf, mirror = await running_job(hub, "a blip while a process finishes")
    closing = asyncio.ensure_future(old.close(finish=True))
    pool = await monitor.subscribe("@agents")
    await pool.until(lambda s, _: s[old.agent_id]["status"] == "draining")
    await wf.create_work_order(kind, id="later")
    # The blip: the hub ends the connection's drain and offers "later" with the registration.
    await drop(old.connection)
    await until(lambda: not old._registered.is_set(), "the agent to see its connection drop")
    # Offered with the registration, before its reply: declined (or not yet) by now.
    await until(lambda: old._registered.is_set(), "the agent registered again")
    while (later := await wf.get_work_order("later"))["attempt"] is not None:
        await asyncio.sleep(0.01)
    assert later["declinedBy"] == []
    release.set()
    await closing
    await mirror.until(lambda s, _: s["workOrders"]["running"]["state"] == "completed")


async def test_close_with_finish_drains_again_when_a_control_client_makes_the_agent_active(hub: Hub) -> None:
    control, monitor, kind, old, release, wf, mirror = await running_job(hub, "resumed by an operator while it finishes")
    closing = asyncio.ensure_future(old.close(finish=True))
    pool = await monitor.subscribe("@agents")
    await pool.until(lambda s, _: s[old.agent_id]["status"] == "draining")
    await wf.create_work_order(kind, id="later")
    # Active: "later" is offered to it in the same commit, and it declines it.
    await control.update_agent_status(old.agent_id, status="active")
    assert (await wf.get_work_order("later"))["attempt"]["agentId"] == old.agent_id
    while (later := await wf.get_work_order("later"))["attempt"] is not None:
        await asyncio.sleep(0.01)
    assert later["declinedBy"] == []
    await pool.until(lambda s, _: s[old.agent_id].get("drainingUntilDisconnect") is True)
    release.set()
    await closing


async def test_close_with_finish_while_away_declines_nothing_held_against_the_agent_id(hub: Hub) -> None:
    control, monitor, kind, old, release, wf, mirror = await running_job(hub, "a deploy during a network blip")
    pool = await monitor.subscribe("@agents")
    await drop(old.connection)
    closing = asyncio.ensure_future(old.close(finish=True))
    # Queued while it is away: offered to it the moment it registers again, with a free slot.
    await wf.create_work_order(kind, id="later")
    await pool.until(lambda s, _: s[old.agent_id]["status"] == "draining")
    release.set()
    await closing
    await mirror.until(lambda s, _: s["workOrders"]["running"]["state"] == "completed")
    # Turned down as draining: not held against the agent id, which the next process takes it under.
    assert (await wf.get_work_order("later"))["declinedBy"] == []


async def test_an_agent_reactivated_while_away_takes_the_work_queued_meanwhile_declining_none(hub: Hub) -> None:
    control, monitor = await clients(hub)
    kind = unique("reactivated-away")
    worker = await drained_worker(hub, kind)
    wf, mirror = await started(control, monitor, "reactivated while away, work waiting")
    pool = await monitor.subscribe("@agents")
    await drop(worker.connection)
    await pool.until(lambda s, _: s[worker.agent_id].get("disconnectedSince") is not None)
    await control.update_agent_status(worker.agent_id, status="active")
    # Offered at its registration, maybe before the reply that tells it it is active again.
    await wf.create_work_order(kind, id="job")
    state = await mirror.until(lambda s, _: s["workOrders"]["job"]["state"] == "completed")
    assert (state["workOrders"]["job"]["result"], state["workOrders"]["job"]["declinedBy"]) == ("back", [])


async def test_a_running_task_has_its_lease_renewed_as_soon_as_the_agent_is_registered_again(hub: Hub) -> None:
    control, monitor = await clients(hub)
    kind = unique("blip-lease")
    worker = await agent(hub, kind)
    release = asyncio.Event()

    @worker.task(kind)
    async def run(task: Task, ctx: TaskContext) -> str:
        await release.wait()
        return "ok"

    await worker.ready()
    wf, mirror = await started(control, monitor, "a network blip during a long lease")
    # A lease of 10 minutes: the timer beats every 200 s, so no beat falls within the test by itself. Without a beat on
    # return, the lease would run on from the last beat before the blip and could lapse before the next one.
    await wf.create_work_order(kind, id="job", timeouts={"lease_ms": 600_000})
    await mirror.until(lambda s, _: s["workOrders"]["job"]["state"] == "running")
    made = requests_made(worker.connection)
    await drop(worker.connection)
    await until(lambda: "agent.register" in made, "the agent to register again")
    await worker.ready()
    release.set()
    state = await mirror.until(lambda s, _: s["workOrders"]["job"]["state"] == "completed")
    assert state["workOrders"]["job"]["attempts"] == 1
    # The running attempt's lease renewed right after the registration, before the task's own report.
    assert made == ["agent.register", "agent.heartbeat", "task.complete"]


async def test_close_with_finish_asks_for_its_drain_again_after_the_hub_rate_limits_it(tmp_path: Path) -> None:
    limited = Hub(tmp_path)
    # Room for the set-up of each connection; refilled fast enough that a drain asked again lands within the test.
    limited.config_file.write_text(json.dumps({**CONFIG, "rateLimit": {"perSecond": 5, "burst": 10}}))
    limited.start()
    try:
        control, monitor, kind, old, release, wf, mirror = await running_job(limited, "a drain refused while the hub is busy")
        pool = await monitor.subscribe("@agents")
        request = old.connection.request
        answers: list[str] = []
        notes: list[asyncio.Future[Any]] = []

        async def after_a_burst(event: str, payload: dict[str, Any], timeout: float | None = None) -> Any:
            # The first drain goes in one message after more notes than the bucket holds: refused RATE_LIMITED, whatever it held.
            if event == "agent.status" and payload.get("untilDisconnect") and not answers:
                notes.extend(asyncio.ensure_future(request("agent.status", {"note": "busy"})) for _ in range(11))
            if event != "agent.status":
                return await request(event, payload, timeout)
            try:
                reply = await asyncio.ensure_future(request(event, payload, timeout))
            except HubError as error:
                answers.append(error.code)
                raise
            answers.append("ok")
            return reply

        old.connection.request = after_a_burst  # type: ignore[method-assign]
        closing = asyncio.ensure_future(old.close(finish=True))
        # Asked again, with no call of ours, once the bucket refilled.
        await pool.until(lambda s, _: s[old.agent_id].get("drainingUntilDisconnect") is True, timeout=10)
        assert answers[0] == "RATE_LIMITED" and answers[-1] == "ok"
        release.set()
        await closing
        state = await mirror.until(lambda s, _: s["workOrders"]["running"]["state"] == "completed")
        assert state["workOrders"]["running"]["attempts"] == 1
        await asyncio.gather(*notes, return_exceptions=True)
    finally:
        await close_all()
        limited.stop()
