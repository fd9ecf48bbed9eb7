"""A monitor's mirror equals the hub's document at the same version, through patches out of order, resyncs and views."""

from __future__ import annotations

import asyncio
import copy
import math
import random
from typing import Any

import pytest

from hub import TOKENS, Hub
from scenario import agent, clients, drop, requests_made, unique, until
from switchboard import ControlClient, HubError, Mirror, Task, TaskContext, connect_monitor


async def test_a_mirror_equals_workflow_get_at_the_same_version(hub: Hub) -> None:
    control, monitor = await clients(hub)
    kind = unique("count")
    worker = await agent(hub, kind, max_concurrent_tasks=4)

    @worker.task(kind)
    async def count(task: Task, ctx: TaskContext) -> int:
        for step in range(1, 4):
            await ctx.progress(step * 25, f"step {step}")
        return int(task.input)

    await worker.ready()
    wf = await control.create_workflow("count", id=unique("py-mirror"))
    mirror = await monitor.subscribe(wf.id)
    summary_view = await monitor.subscribe(wf.id, view={"kind": "summary"})
    changes: list[int] = []
    mirror.on_change(lambda change: changes.append(change.to_version))
    await wf.start()
    await wf.add_step("count", id="s1", start=True)
    await wf.update_progress("eu/us", 10)  # a stage name that needs escaping in a JSON pointer
    await wf.create_work_orders([{"id": f"o{i}", "task_type": kind, "input": i} for i in range(8)])
    await mirror.until(lambda state, _: state["workOrderCounts"]["completed"] == 8)
    await wf.complete()
    version, workflow = await wf.get_versioned()
    state = await mirror.until(lambda _, at: at >= version)
    assert mirror.version == version and state == workflow
    assert changes == sorted(changes) and changes[-1] == version
    summary = await summary_view.until(lambda view, _: view["status"] == "completed")
    assert summary["workOrderCounts"]["completed"] == 8 and summary["stages"]["eu/us"]["progress"] == 10
    assert (await monitor.summary(wf.id))["status"] == "completed"
    assert (await monitor.report(wf.id, "json"))["version"] == version


def test_a_mirror_applies_patches_that_arrive_out_of_order_in_version_order() -> None:
    patches = [{"doc": "wf", "from": v, "to": v + 1, "ops": [{"op": "add", "path": f"/items/{v}", "value": v}]} for v in range(20)]
    random.Random(7).shuffle(patches)
    mirror = Mirror("wf")
    mirror.load({"doc": "wf", "mode": "snapshot", "version": 0, "state": {"items": {}}, "epoch": "e"})
    seen: list[int] = []
    mirror.on_change(lambda change: seen.append(change.to_version))
    for message in patches + patches[:5]:  # and some twice
        mirror.apply(message)
    assert mirror.version == 20 and not mirror.has_gap
    assert mirror.state == {"items": {str(v): v for v in range(20)}}
    assert seen == list(range(1, 21))


async def test_until_raises_what_its_predicate_raises_after_a_change() -> None:
    mirror = Mirror("wf")
    mirror.load({"doc": "wf", "mode": "snapshot", "version": 1, "state": {"done": 1, "total": 0}, "epoch": "e"})
    waiting = asyncio.ensure_future(mirror.until(lambda state, _: state["done"] / state["total"] >= 1 if state["done"] > 1 else False))
    await asyncio.sleep(0)  # one turn of the loop: until() has checked once and waits for a change
    mirror.apply({"doc": "wf", "from": 1, "to": 2, "ops": [{"op": "replace", "path": "/done", "value": 2}]})
    with pytest.raises(ZeroDivisionError):
        await waiting


async def test_until_refuses_a_nan_or_negative_timeout_instead_of_waiting_for_ever() -> None:
    mirror = Mirror("wf")
    mirror.load({"doc": "wf", "mode": "snapshot", "version": 1, "state": {"done": 0}, "epoch": "e"})
    for timeout in (math.nan, -1.0):
        with pytest.raises(HubError) as refused:
            await mirror.until(lambda state, _: state["done"] == 1, timeout=timeout)
        assert refused.value.code == "VALIDATION" and "timeout" in refused.value.message
    waiting = asyncio.ensure_future(mirror.until(lambda state, _: state["done"] == 1, timeout=math.inf))  # no limit
    await asyncio.sleep(0)  # one turn of the loop: until() has checked once and waits for a change
    mirror.apply({"doc": "wf", "from": 1, "to": 2, "ops": [{"op": "replace", "path": "/done", "value": 1}]})
    assert (await waiting) == {"done": 1}


def test_a_patch_that_does_not_apply_leaves_the_mirror_as_it_was() -> None:
    mirror = Mirror("wf")
    state = {"items": {"a": 1}, "list": [1, 2, 3], "gone": "g"}
    mirror.load({"doc": "wf", "mode": "snapshot", "version": 1, "state": state, "epoch": "e"})
    before = copy.deepcopy(state)
    ops = [
        {"op": "add", "path": "/list/1", "value": 9},
        {"op": "remove", "path": "/list/0"},
        {"op": "replace", "path": "/items/a", "value": 2},
        {"op": "add", "path": "/items/b", "value": 3},
        {"op": "remove", "path": "/gone"},
        {"op": "replace", "path": "/missing/x", "value": 1},
    ]
    try:
        mirror.apply({"doc": "wf", "from": 1, "to": 2, "ops": ops})
    except ValueError:
        pass
    else:
        raise AssertionError("the patch applied")
    assert mirror.state == before and mirror.version == 1


async def test_a_lost_patch_is_a_gap_the_mirror_fills_from_the_hub(hub: Hub) -> None:
    control, monitor = await clients(hub)
    wf = await control.create_workflow("gap", id=unique("py-gap"))
    mirror = await monitor.subscribe(wf.id)
    # The transport loses one patch (the first of the progress update's): the next one does not follow on.
    take, arm, lost = monitor._on_patch, asyncio.Event(), asyncio.Event()

    async def losing(message: dict[str, Any]) -> None:
        if arm.is_set() and not lost.is_set() and message["doc"] == wf.id:
            lost.set()
            return
        await take(message)

    monitor.connection.on("patch", losing)
    await wf.start()
    await mirror.until(lambda state, _: state["status"] == "in_progress")
    arm.set()
    await wf.update_progress("load", 30)
    await lost.wait()
    await wf.update_progress("load", 60)
    version, workflow = await wf.get_versioned()
    assert await mirror.until(lambda _, at: at >= version) == workflow and mirror.version == version
    assert not mirror.has_gap


def rolled_back_under_first(monitor: Any, subscription: dict[str, Any]) -> asyncio.Event:
    """Makes the first answer to `subscription` show a change the hub then rolls back: a new epoch, and a `resync` of the
    document or view it names, noticed while the subscription is still in flight."""
    request, noticed = monitor.connection.request, asyncio.Event()

    async def rolled_back(event: str, payload: dict[str, Any], timeout: float | None = None) -> Any:
        answer = await request(event, payload, timeout)
        if event == "subscribe" and payload == subscription and not noticed.is_set():
            noticed.set()
            answer = {**answer, "epoch": "rolled-back", "state": {**answer["state"], "userQuery": "rolled back"}}
            await monitor._on_resync({"doc": answer["doc"], "reason": "rolled back"})
            await asyncio.sleep(0)  # one turn of the loop: the notice is handled while the subscription is in flight
        return answer

    monitor.connection.request = rolled_back
    return noticed


async def test_a_rollback_notice_that_arrives_while_a_subscription_is_in_flight_is_acted_on_after_it(hub: Hub) -> None:
    control, monitor = await clients(hub)
    wf = await control.create_workflow("rolled back under a subscription", id=unique("py-rollback"))
    noticed = rolled_back_under_first(monitor, {"doc": wf.id})
    mirror = await monitor.subscribe(wf.id)
    assert noticed.is_set()
    await wf.start()
    version, workflow = await wf.get_versioned()
    assert await mirror.until(lambda _, at: at >= version) == workflow and mirror.version == version


async def test_a_rollback_notice_for_a_view_that_arrives_while_its_subscription_is_in_flight_is_acted_on_after_it(hub: Hub) -> None:
    # As test_monitor's rollback test does for a whole document, for a view (PROTOCOL.md: a rollback sends every view's subscribers `resync`).
    control, monitor = await clients(hub)
    wf = await control.create_workflow("a view rolled back under its subscription", id=unique("py-view-rollback"))
    noticed = rolled_back_under_first(monitor, {"doc": wf.id, "view": {"kind": "summary"}})
    view = await monitor.subscribe(wf.id, view={"kind": "summary"})
    assert noticed.is_set()
    await wf.start()
    await view.until(lambda state, _: state["status"] == "in_progress")
    other = await connect_monitor(hub.url, TOKENS["monitor"])
    try:
        fresh = await other.subscribe(wf.id, view={"kind": "summary"})
        await view.until(lambda _, at: at >= fresh.version, timeout=5)
        # Were the notice dropped, the view would keep the rolled-back value (and its made-up epoch) for good.
        assert view.state == fresh.state
    finally:
        await other.close()


async def test_a_change_to_a_view_while_its_subscription_is_answered_is_kept_when_another_view_subscription_ends_first(hub: Hub) -> None:
    # Two views subscribed to together (say a dashboard's): the patches of the one still in flight must be held for it, as
    # a document's are, whatever the other does meanwhile.
    control, monitor = await clients(hub)
    first = await control.create_workflow("a view answered first", id=unique("py-view-a"))
    second = await control.create_workflow("a view answered second", id=unique("py-view-b"))
    request, take = monitor.connection.request, monitor._on_patch
    first_done, patched = asyncio.Event(), asyncio.Event()

    async def recording(message: dict[str, Any]) -> None:
        if message["doc"] == f"{second.id}/summary":
            patched.set()
        await take(message)

    async def slow(event: str, payload: dict[str, Any], timeout: float | None = None) -> Any:
        answer = await request(event, payload, timeout)
        if event == "subscribe" and payload.get("doc") == second.id and "view" in payload:
            # As while a big snapshot is read from its transfer: the other subscription ends, and the workflow changes.
            await first_done.wait()
            await second.start()
            await patched.wait()
        return answer

    async def subscribe_first() -> Any:
        mirror = await monitor.subscribe(first.id, view={"kind": "summary"})
        first_done.set()
        return mirror

    monitor.connection.on("patch", recording)
    monitor.connection.request = slow  # type: ignore[method-assign]
    _, view = await asyncio.gather(subscribe_first(), monitor.subscribe(second.id, view={"kind": "summary"}))
    # Its patch comes after the answer: had the hold ended with the first subscription, it would be dropped, stale until the next change.
    await view.until(lambda state, _: state["status"] == "in_progress", timeout=5)


async def test_a_page_view_is_followed_again_after_a_reconnect_when_its_spec_dict_is_reused_for_the_next_page(hub: Hub) -> None:
    # Paging through a workflow's orders by reusing one spec dict, as Python code does: the first page's mirror must keep its own spec.
    control, monitor = await clients(hub)
    wf = await control.create_workflow("paged orders", id=unique("py-pages"))
    kind = unique("nobody-serves-this")
    await wf.create_work_order(kind, id="o1")
    await wf.create_work_order(kind, id="o2")
    view: dict[str, Any] = {"kind": "orders", "limit": 1}
    first = await monitor.subscribe(wf.id, view=view)
    assert first.state["ids"] == ["o2"]
    view["before"] = first.state["ids"][-1]
    second = await monitor.subscribe(wf.id, view=view)
    assert second.state["ids"] == ["o1"] and first.doc != second.doc
    await drop(monitor.connection)
    await wf.create_work_order(kind, id="o3")
    await second.until(lambda state, _: state["total"] == 3, timeout=5)
    # Were the dict kept by reference, the first page would be subscribed to again as the second (the dict as it is now):
    # its answer would go to the second page's mirror, and the first page would not be followed any more.
    await first.until(lambda state, _: state["ids"] == ["o3"], timeout=5)


async def test_a_view_unsubscribed_from_during_a_catch_up_is_not_followed_again(hub: Hub) -> None:
    control, monitor = await clients(hub)
    wf = await control.create_workflow("unsubscribed during a catch-up", id=unique("py-unsub"))
    summary = await monitor.subscribe(wf.id, view={"kind": "summary"})
    orders = await monitor.subscribe(wf.id, view={"kind": "orders"})
    received: list[str] = []
    take, request = monitor._on_patch, monitor.connection.request

    async def recording(message: dict[str, Any]) -> None:
        received.append(message["doc"])
        await take(message)

    async def unsubscribing(event: str, payload: dict[str, Any], timeout: float | None = None) -> Any:
        answer = await request(event, payload, timeout)
        if event == "subscribe" and payload.get("view") == {"kind": "summary"}:
            # The user stops following the orders view while the catch-up is at the summary, the first mirror it holds.
            await monitor.unsubscribe(orders.doc)
        return answer

    monitor.connection.on("patch", recording)
    monitor.connection.request = unsubscribing  # type: ignore[method-assign]
    await monitor._resync(None)
    assert orders.doc not in monitor.docs
    # Both views change with the next order: only the summary's patch may come.
    await wf.create_work_order(unique("kind"), id="after")
    await summary.until(lambda view, _: sum(view["workOrderCounts"].values()) == 1)
    assert (await request("summary", {"workflowId": wf.id}))["id"] == wf.id  # a round trip: anything of that broadcast came before
    assert received == [summary.doc] and orders.doc not in monitor.docs


async def test_a_view_unsubscribed_from_before_its_subscription_is_answered_is_not_kept(hub: Hub) -> None:
    control, monitor = await clients(hub)
    wf = await control.create_workflow("unsubscribed early", id=unique("py-early"))
    pending = asyncio.ensure_future(monitor.subscribe(wf.id, view={"kind": "summary"}))
    await asyncio.sleep(0)  # one turn: the subscription is sent
    await monitor.unsubscribe(f"{wf.id}/summary")
    assert (await pending).state["id"] == wf.id
    assert monitor.docs == {}


async def pruned(control: Any, workflow_id: str) -> None:
    """Prunes until the ended workflow, archived by the hub's next pass, is deleted from the archive."""
    removed: list[str] = []
    while workflow_id not in removed:
        removed += [item["workflowId"] for item in await control.prune_archive(1)]
        await asyncio.sleep(0.01)


async def test_a_mirror_of_a_workflow_deleted_meanwhile_is_dropped_at_the_catch_up_and_the_others_catch_up(archiving_hub: Hub) -> None:
    control, monitor = await clients(archiving_hub)
    gone = await control.create_workflow("pruned while we were away")
    await gone.start()
    stays = await control.create_workflow("still here")
    await stays.start()
    # Held first, so a catch-up that stops at it never reaches the other.
    await monitor.subscribe(gone.id)
    staying = await monitor.subscribe(stays.id)
    await gone.complete()
    await pruned(control, gone.id)
    await drop(monitor.connection)
    await stays.update_progress("after the catch-up", 40)
    state = await staying.until(lambda s, _: "after the catch-up" in s["stages"])
    assert state["progress"] == 40
    assert gone.id not in monitor.docs


async def test_subscribe_all_asks_nothing_for_pruned_workflows_it_never_held_and_drops_the_one_it_held(archiving_hub: Hub) -> None:
    control, monitor = await clients(archiving_hub)
    old = [f"old-{i}" for i in range(5)]
    for id_ in old:
        await (await control.create_workflow("archived before the monitor came", id=id_)).cancel()
    _, probe = await clients(archiving_hub)
    # Archived once a subscribeAll answer (in-memory documents only) lacks them: the monitor then never holds them.
    while any(answer["doc"] in old for answer in (await probe.connection.request("subscribeAll", {"versions": {}}))["docs"]):
        await asyncio.sleep(0.01)
    mirrors = await monitor.subscribe_all()
    held = await control.create_workflow("mirrored, then archived", id="held")
    await until(lambda: held.id in mirrors, "the new workflow mirrored")
    await held.cancel()
    await mirrors[held.id].until(lambda state, _: state["status"] == "cancelled")
    made = requests_made(monitor.connection)
    removed: list[str] = []
    while len(removed) < len(old) + 1:  # the held one is archived by the hub's next pass
        removed += [item["workflowId"] for item in await control.prune_archive(1)]
        await asyncio.sleep(0.01)
    # Its notice and the others' left the hub together: once the held one is dropped, every notice was handled.
    await until(lambda: held.id not in monitor.docs, "the pruned workflow no longer mirrored")
    assert made == ["subscribe"]
    await control.create_workflow("made anew", id="old-0")
    await until(lambda: "old-0" in monitor.docs and monitor.docs["old-0"].state["userQuery"] == "made anew", "the new workflow mirrored")


async def test_a_view_of_a_workflow_is_dropped_once_its_archived_workflow_is_pruned(archiving_hub: Hub) -> None:
    control, monitor = await clients(archiving_hub)
    wf = await control.create_workflow("viewed, archived, pruned")
    await wf.start()
    summary = await monitor.subscribe(wf.id, view={"kind": "summary"})
    await wf.complete()
    await summary.until(lambda view, _: view["status"] == "completed")
    await pruned(control, wf.id)

    async def dropped() -> None:
        while summary.doc in monitor.docs:
            await asyncio.sleep(0.01)

    # The hub tells the view's follower of the deletion; kept, it would show the deleted workflow for good.
    await asyncio.wait_for(dropped(), 10)


async def big_workflow(control: ControlClient, user_query: str) -> str:
    """A workflow of five 250 KB orders nobody serves: over 1 MB, so its snapshot comes as a transfer. Returns its id."""
    wf = await control.create_workflow(user_query)
    blob = "x" * 250_000
    # Two requests: one of all five would pass the hub's 1 MiB message bound.
    await wf.create_work_orders([{"id": f"o{i}", "task_type": "nobody-serves-this", "input": blob} for i in range(3)])
    await wf.create_work_orders([{"id": f"o{i}", "task_type": "nobody-serves-this", "input": blob} for i in range(3, 5)])
    return wf.id


async def test_subscribe_all_mirrors_more_big_workflows_than_a_connection_holds_transfers(own_hub: Hub) -> None:
    # 66 workflows over 1 MB each: one subscribeAll answer offers more transfers than the 64 a connection may hold.
    control, monitor = await clients(own_hub)
    ids = [await big_workflow(control, f"big {w}") for w in range(66)]
    mirrors = await monitor.subscribe_all()
    assert all(len(mirrors[id_].state["workOrders"]) == 5 for id_ in ids)


async def test_subscribe_all_called_while_another_catch_up_runs_returns_every_document(hub: Hub) -> None:
    # Two callers (or one during the catch-up a reconnect or a "*" resync notice started) ask to follow everything.
    control, monitor = await clients(hub)
    wf = await control.create_workflow("followed by subscribe_all", id=unique("py-all"))
    first, second = await asyncio.gather(monitor.subscribe_all(), monitor.subscribe_all())
    assert wf.id in first
    # The second waits for the running catch-up and one after it: returning at once, it would miss the mirrors.
    assert wf.id in second


async def test_the_mapping_subscribe_all_returns_holds_workflows_created_later(hub: Hub) -> None:
    # As the TypeScript SDK's subscribeAll() returns the monitor's live map: a copy taken at the call would miss it.
    control, monitor = await clients(hub)
    mirrors = await monitor.subscribe_all()
    later = await control.create_workflow("created after subscribe_all", id=unique("py-later"))
    await until(lambda: later.id in monitor.docs, "the monitor to mirror the new workflow")
    assert later.id in mirrors


async def test_a_document_unsubscribed_from_while_subscribe_all_reads_its_big_snapshot_is_not_mirrored(hub: Hub) -> None:
    control, monitor = await clients(hub)
    big = await control.create_workflow("over 1 MB: its snapshot comes as a transfer", id=unique("py-big"))
    kind = unique("nobody-serves-this")
    await big.create_work_orders([{"id": f"o{i}", "task_type": kind, "input": "x" * 250_000} for i in range(3)])
    await big.create_work_orders([{"id": f"o{i}", "task_type": kind, "input": "x" * 250_000} for i in range(3, 5)])
    request, unsubscribed = monitor.connection.request, asyncio.Event()

    async def unsubscribing(event: str, payload: dict[str, Any], timeout: float | None = None) -> Any:
        if event == "transfer.read" and not unsubscribed.is_set():
            unsubscribed.set()
            await monitor.unsubscribe(big.id)  # the user stops following it while its snapshot is read
        return await request(event, payload, timeout)

    monitor.connection.request = unsubscribing  # type: ignore[method-assign]
    appeared: list[str] = []
    monitor.on("doc", lambda mirror: appeared.append(mirror.doc))
    await monitor.subscribe_all()
    assert unsubscribed.is_set()
    # Loaded all the same, its answer would make a new mirror the hub no longer patches (it left the room): a frozen copy in docs.
    assert big.id not in monitor.docs and big.id not in appeared


async def test_a_document_unsubscribed_from_while_following_everything_stays_unfollowed_until_subscribed_to_again(own_hub: Hub) -> None:
    control, monitor = await clients(own_hub)
    dropped = await control.create_workflow("not wanted any more")
    kept = await control.create_workflow("still followed")
    await monitor.subscribe_all()
    await monitor.unsubscribe(dropped.id)
    appeared: list[str] = []
    monitor.on("doc", lambda mirror: appeared.append(mirror.doc))
    # Both change, `kept` last: once its mirror shows it, and one more round trip, `dropped`'s patch has come and gone.
    await dropped.start()
    await kept.start()
    await monitor.docs[kept.id].until(lambda state, _: state["status"] == "in_progress")
    await monitor.summary(kept.id)
    assert appeared == [] and dropped.id not in monitor.docs
    again = await monitor.subscribe(dropped.id)
    await dropped.complete()
    await again.until(lambda state, _: state["status"] == "completed")
    assert monitor.docs[dropped.id] is again


async def test_the_pool_before_its_first_agent_is_empty_to_subscribe_and_subscribe_all_then_followed(own_hub: Hub) -> None:
    control, monitor = await clients(own_hub)
    pool = await monitor.subscribe("@agents")
    assert (pool.version, pool.state) == (0, {})
    wf = await control.create_workflow("one workflow, no agent yet")
    _, everything = await clients(own_hub)
    mirrors = await everything.subscribe_all()
    assert sorted(mirrors) == sorted(["@agents", wf.id]) and mirrors["@agents"].state == {}
    worker = await agent(own_hub, "nothing", agent_id="first")
    await pool.until(lambda state, _: "first" in state)
    await mirrors["@agents"].until(lambda state, _: "first" in state)
    await worker.close()


async def test_a_resume_says_no_unsubscribe_again_for_documents_let_go_under_subscribe_all_that_left_memory(archiving_hub: Hub) -> None:
    control, monitor = await clients(archiving_hub)
    live = await control.create_workflow("let go of, still in memory")
    await monitor.subscribe_all()
    await monitor.unsubscribe(live.id)
    # A long-lived dashboard lets go of each workflow it is done with; each then ends and is archived, and pruned.
    for i in range(3):
        done = await control.create_workflow(f"finished {i}")
        await monitor.unsubscribe(done.id)
        await done.cancel()
        await pruned(control, done.id)
    made = requests_made(monitor.connection)
    await drop(monitor.connection)
    await until(lambda: "unsubscribe" in made, "the resume over")  # live's, said again after the resume's subscribeAll
    await monitor.summary(live.id)  # one more round trip: whatever the resume sends is sent by then
    assert made.count("unsubscribe") == 1
    await live.start()
    await monitor.summary(live.id)
    assert live.id not in monitor.docs


async def test_subscribe_all_asks_for_everything_again_at_once_when_the_connection_drops_while_it_reads_the_snapshots(own_hub: Hub) -> None:
    control, monitor = await clients(own_hub)
    ids = [await big_workflow(control, f"over 1 MB {w}: its snapshot comes as a transfer") for w in range(3)]
    request = monitor.connection.request
    sent: list[str] = []
    reads: list[dict[str, Any]] = []

    async def dropping_after_the_first_read(event: str, payload: dict[str, Any], timeout: float | None = None) -> Any:
        sent.append(event)
        try:
            return await request(event, payload, timeout)
        except HubError as error:
            sent.append(f"{event} {error.code}")
            raise
        finally:
            # The first snapshot read, the connection drops: the answer's other transfers were that connection's.
            if event == "transfer.read" and not reads:
                reads.append(payload)
                await drop(monitor.connection)

    monitor.connection.request = dropping_after_the_first_read  # type: ignore[method-assign]
    mirrors = await monitor.subscribe_all()
    assert all(len(mirrors[id_].state["workOrders"]) == 5 for id_ in ids)
    assert [event for event in sent if event.endswith("NOT_FOUND") or event == "subscribe"] == []
    assert sent.count("subscribeAll") >= 2
