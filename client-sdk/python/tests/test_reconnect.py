"""Clients survive a hub restart: the agent keeps its running attempt, the monitor resyncs, control requests go on."""

from __future__ import annotations

import asyncio

from hub import Hub
from scenario import agent, clients, unique, until
from switchboard import Task, TaskContext


async def test_running_work_and_mirrors_survive_a_hub_restart(own_hub: Hub) -> None:
    hub = own_hub
    control, monitor = await clients(hub)
    kind = unique("long")
    worker = await agent(hub, kind)
    started, release = asyncio.Event(), asyncio.Event()
    attempts: list[int] = []

    @worker.task(kind)
    async def long(task: Task, ctx: TaskContext) -> str:
        attempts.append(ctx.attempt)
        started.set()
        await release.wait()
        await ctx.progress(90, "nearly there")
        return "survived"

    await worker.ready()
    wf = await control.create_workflow("restart", id="py-restart")
    await wf.start()
    mirror = await monitor.subscribe(wf.id)
    await wf.create_work_order(kind, id="long")
    await started.wait()
    await mirror.until(lambda state, _: state["workOrders"]["long"]["state"] == "running")

    await asyncio.get_running_loop().run_in_executor(None, hub.stop)
    await until(lambda: not worker.connection.connected and not monitor.connection.connected, "the clients to see the hub go")
    await asyncio.get_running_loop().run_in_executor(None, hub.start)

    agents = await control.list_agents()  # waits, unsent, for the reconnection
    assert [a["id"] for a in agents] == [worker.agent_id]
    await until(lambda: worker.connection.connected and worker._registered.is_set(), "the agent to register again")
    release.set()
    state = await mirror.until(lambda s, _: s["workOrders"]["long"]["state"] == "completed")
    order = state["workOrders"]["long"]
    assert (order["result"], order["attempts"], attempts) == ("survived", 1, [1])
    version, workflow = await wf.get_versioned()
    assert await mirror.until(lambda _, at: at >= version) == workflow and mirror.version == version


async def test_a_view_subscribed_while_the_hub_is_away_leaves_the_other_mirrors_to_resync(own_hub: Hub) -> None:
    hub = own_hub
    control, monitor = await clients(hub)
    wf = await control.create_workflow("view while away", id="py-view-away")
    mirror = await monitor.subscribe(wf.id)
    assert mirror.state["status"] == "pending"

    await asyncio.get_running_loop().run_in_executor(None, hub.stop)
    await until(lambda: not monitor.connection.connected, "the monitor to see the hub go")
    # Subscribed while away: the request waits, unsent, for the reconnection.
    view = asyncio.ensure_future(monitor.subscribe(wf.id, view={"kind": "summary"}))
    await asyncio.sleep(0)  # let it start waiting
    await asyncio.get_running_loop().run_in_executor(None, hub.start)
    summary = await view
    assert summary.state["status"] == "pending"

    await wf.start()  # waits, unsent, for the control client's reconnection
    await summary.until(lambda state, _: state["status"] == "in_progress")
    # The whole-document mirror was caught up at the reconnection too (PROTOCOL.md: subscribe again with the versions held).
    await mirror.until(lambda state, _: state["status"] == "in_progress")
