"""Agent coordination: agents register their capabilities, work orders name what they need, and the
hub pushes each order to the best agent. The Python package's AgentCoordinator
(register_agent, create_work_order, auto_assign_work_orders).
"""

import asyncio

from example_hub import use_hub
from switchboard import Task, TaskContext, TaskReport, connect_agent, connect_control, connect_monitor


async def main() -> None:
    hub = use_hub()
    control = await connect_control(hub.url, hub.tokens["admin"])
    monitor = await connect_monitor(hub.url, hub.tokens["monitor"])
    processor, writer = await asyncio.gather(
        connect_agent(hub.url, hub.tokens["agent"], agent_id="data_processor", agent_type="data_processing",
                      capabilities=["csv_processing", "data_validation"], max_concurrent_tasks=3),
        connect_agent(hub.url, hub.tokens["agent"], agent_id="report_writer", agent_type="reporting", capabilities=["markdown"]),
    )
    try:
        # A handler per task type: returning completes the work order, raising fails the attempt (and it is retried).
        @processor.task("data_processing")
        async def process(task: Task, ctx: TaskContext) -> dict[str, int]:
            rows = task.input["csv"].strip().split("\n")[1:]
            await ctx.progress(50, f"parsed {len(rows)} rows")
            valid = [row for row in rows if all(cell.strip() for cell in row.split(","))]
            return {"rows": len(rows), "valid": len(valid)}

        @writer.task("reporting")
        def write(task: Task, ctx: object) -> dict[str, str]:  # a plain function runs in a worker thread
            return {"title": f"Report on {task.description}"}

        await asyncio.gather(processor.ready(), writer.ready())
        for agent in await control.list_agents():
            print(f"registered {agent['id']} ({agent['agentType']}): capabilities [{', '.join(agent['capabilities'])}], "
                  f"{agent['maxConcurrentTasks']} slot(s)")
        reports: list[TaskReport] = []
        for client in (processor, writer):
            client.on("report", reports.append)

        wf = await control.create_workflow("Multi-agent data processing")
        watch = await monitor.subscribe(wf.id)
        # Created before start, the orders wait in `pending`; start() releases them to the agents.
        csv = "id,name,email\n1,Ada,ada@example.com\n2,Grace,\n3,Alan,alan@example.com\n"
        processing = await wf.create_work_order("data_processing", description="Process customer data CSV",
                                                requirements=["csv_processing"], priority="high", input={"csv": csv})
        reporting = await wf.create_work_order("reporting", description="customer data", requirements=["markdown"],
                                               dependencies=[processing["id"]])
        gpu = await wf.create_work_order("data_processing", description="Train on GPU", requirements=["gpu"])
        print(f"created {processing['id']} (needs csv_processing), {reporting['id']} (after it), {gpu['id']} (needs gpu): "
              f"{processing['state']}, {reporting['state']}, {gpu['state']}")
        await wf.start()
        assigned = await wf.auto_assign()  # assignment is automatic; this lists what is assigned right now
        print("assignments right after start: " + (", ".join(f"{a['workOrderId']} → {a['agentId']}" for a in assigned) or "none"))

        await watch.until(lambda state, _: state["workOrderCounts"]["completed"] == 2)
        for order_id in (processing["id"], reporting["id"]):
            order = await wf.get_work_order(order_id)
            print(f"{order_id}: {order['state']} by {order['history'][-1]['agentId']}, result {order['result']}")
        waiting = await wf.get_work_order(gpu["id"])
        print(f"{gpu['id']}: still {waiting['state']} (waiting: {waiting['waiting']}); no agent has the gpu capability")
        await wf.cancel_work_order(gpu["id"], "no GPU agent in this demo")
        print(f"accepted reports: {sum(1 for report in reports if report.accepted)}")
        stats = await control.get_agent("data_processor")
        print(f"data_processor: {stats['stats']['completed']} completed, {stats['stats']['failed']} failed, load {stats['load']}")
        await wf.complete()
        print(f"agent coordination: {(await wf.summary())['status']}")
    finally:
        await asyncio.gather(processor.close(), writer.close(), monitor.close(), control.close())
        hub.close()


if __name__ == "__main__":
    asyncio.run(main())
