"""A monitor printing live progress: a mirror of a workflow, kept exact by the hub's patches, printed on every change
while an agent works through its orders.
"""

import asyncio

from example_hub import use_hub
from switchboard import MirrorChange, Task, TaskContext, connect_agent, connect_control, connect_monitor


async def main() -> None:
    hub = use_hub()
    control = await connect_control(hub.url, hub.tokens["admin"])
    monitor = await connect_monitor(hub.url, hub.tokens["monitor"])
    worker = await connect_agent(hub.url, hub.tokens["agent"], agent_id="resizer", agent_type="images", max_concurrent_tasks=2)
    try:
        @worker.task("resize")
        async def resize(task: Task, ctx: TaskContext) -> dict[str, int]:
            for done in range(1, 5):
                await asyncio.sleep(0.05)  # the work
                await ctx.progress(done * 25, f"{done * 25} images")
            return {"images": 100}

        await worker.ready()
        wf = await control.create_workflow("Resize the catalogue images")
        live = await monitor.subscribe(wf.id)
        printed: list[str] = []

        def show(change: MirrorChange) -> None:
            state = live.state
            counts = state["workOrderCounts"]
            orders = " ".join(f"{o['id']}:{o['progress']:>3}%" for o in state["workOrders"].values())
            line = f"v{change.to_version:<3} {state['status']:<11} {state['progress']:>6}%  done {counts['completed']}/{len(state['workOrders'])}  {orders}"
            if not printed or printed[-1] != line:
                printed.append(line)
                print(line)

        live.on_change(show)
        await wf.create_work_orders([{"id": f"batch-{n}", "task_type": "resize"} for n in range(1, 5)])
        await wf.start()
        await live.until(lambda state, _: state["workOrderCounts"]["completed"] == 4)
        await wf.complete()
        final = await live.until(lambda state, _: state["status"] == "completed")
        print(f"live monitor: {final['status']} at version {live.version}, {len(printed)} updates printed")
    finally:
        await asyncio.gather(worker.close(), monitor.close(), control.close())
        hub.close()


if __name__ == "__main__":
    asyncio.run(main())
