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
