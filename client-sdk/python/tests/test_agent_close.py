"""An agent's close(finish=True) that is itself interrupted (a second Ctrl-C, a wait_for that ran out) closes the agent."""

from __future__ import annotations

import asyncio

from hub import Hub
from scenario import agent, clients, started, unique
from switchboard import Task, TaskContext


async def test_a_finishing_close_that_is_cancelled_closes_the_agent_at_once(hub: Hub) -> None:
    control, monitor = await clients(hub)
    kind = unique("finish-cancelled")
    worker = await agent(hub, kind)
    stopped = asyncio.Event()

    @worker.task(kind)
    async def run(task: Task, ctx: TaskContext) -> str:
        await ctx.cancelled.wait()
        stopped.set()
        return "stopped"

    await worker.ready()
    wf, mirror = await started(control, monitor, "a second Ctrl-C while an agent finishes")
    await wf.create_work_order(kind, id="long")
    await mirror.until(lambda s, _: s["workOrders"]["long"]["state"] == "running")
    closing = asyncio.ensure_future(worker.close(finish=True))
    pool = await monitor.subscribe("@agents")
    await pool.until(lambda s, _: s[worker.agent_id]["status"] == "draining")
    closing.cancel()
    await asyncio.gather(closing, return_exceptions=True)
    # Not left half-closed (connected, taking no work, its handler running): closed as a plain close() would.
    assert worker.connection.closed
    assert stopped.is_set()
    await asyncio.wait_for(worker.wait_closed(), 5)
    assert (await pool.until(lambda s, _: s[worker.agent_id].get("disconnectedSince") is not None))
