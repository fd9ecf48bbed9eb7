"""Basic workflow: objectives, KPIs, steps, stage progress, a summary and reports in three formats.

The Python package's "Basic Workflow Creation" (WorkflowManager + DocumentationEngine).
"""

import asyncio
from pathlib import Path

from example_hub import use_hub
from switchboard import connect_control


async def main() -> None:
    hub = use_hub()
    try:
        async with await connect_control(hub.url, hub.tokens["admin"]) as control:
            wf = await control.create_workflow("Analyze customer data and generate insights")
            print(f"created workflow {wf.id}")
            await wf.start()
            print("started: pending → in_progress")

            objective = await wf.add_objective("Data Analysis", description="Complete analysis of customer data",
                                               target="100% completion", priority="high")
            kpi = await wf.add_kpi("Processing Speed", 1000, description="Data processing rate", unit="records/minute")
            print(f'objective "{objective["name"]}" (target {objective["target"]}); KPI "{kpi["name"]}" (target {kpi["target"]} {kpi["unit"]})')

            for stage, records in (("data_loading", 800), ("analysis", 1250)):
                step = await wf.add_step(stage, start=True)
                await wf.update_progress(stage, 50)
                recorded = await wf.record_kpi(kpi["id"], records)
                await wf.update_progress(stage, 100)
                finished = await wf.complete_step(step["id"], {"records": records})
                met = "met" if recorded["met"] else "not met"
                print(f"step {stage}: {finished['status']} in {finished['durationMs']} ms; KPI now {recorded['current']} ({met})")
            await wf.update_objective(objective["id"], status="completed", progress=100)
            await wf.complete()

            summary = await wf.summary()
            print(f"summary: {summary['status']}, progress {summary['progress']}%, "
                  f"{summary['steps']['completed']}/{summary['steps']['total']} steps, "
                  f"{summary['objectives']['completed']}/{summary['objectives']['total']} objectives completed, "
                  f"{summary['kpis']['met']}/{summary['kpis']['total']} KPIs met")

            written = await wf.generate_reports()
            print(f"reports of version {written['version']}: {', '.join(Path(f['path']).name for f in written['files'])}")
            markdown = await wf.report("markdown")
            print(f"markdown report starts with: {markdown['body'].splitlines()[0]}")
    finally:
        hub.close()


if __name__ == "__main__":
    asyncio.run(main())
