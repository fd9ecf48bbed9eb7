"""A handle on one workflow: the Python package's WorkflowManager, WorkflowState and WorkflowUpdater calls."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, TypedDict

from .connection import Connection
from .paging import pages
from .payloads import fields
from .transfers import inline_or_transfer, read_whole, with_body

JSON = dict[str, Any]


class Pause(TypedDict):
    """Why a paused workflow's work is not offered: since when (ms since the epoch), which client (its token's name), and why."""

    at: int
    by: str
    reason: str | None


class PauseState(TypedDict):
    """The reply to pause() and resume(): the workflow's status and pause as they now are (None: not paused), and the version."""

    version: int
    status: str
    paused: Pause | None


class Workflow:
    """One workflow; every method is one request. Replies are the hub's JSON (camelCase, as in PROTOCOL.md)."""

    def __init__(self, connection: Connection, workflow_id: str) -> None:
        self._connection = connection
        self.id = workflow_id
        #: The newest workflow version a reply through this handle carried: of a change made through it, or of a read.
        self.version = 0

    def __repr__(self) -> str:
        return f"Workflow({self.id!r}, version={self.version})"

    async def _send(self, event: str, payload: JSON, timeout: float | None = None) -> Any:
        reply = await self._connection.request(event, {**payload, "workflowId": self.id}, timeout)
        if isinstance(reply, dict) and isinstance(reply.get("version"), int):
            self.version = max(self.version, reply["version"])
        return reply

    async def get(self, *, timeout: float | None = None) -> JSON:
        """The whole state of the workflow (the document monitors mirror)."""
        return (await self.get_versioned(timeout=timeout))[1]

    async def get_versioned(self, *, timeout: float | None = None) -> tuple[int, JSON]:
        """The whole state of the workflow with the version it shows."""
        async def read(reply: JSON) -> tuple[int, JSON]:
            return reply["version"], await inline_or_transfer(self._connection, reply.get("workflow"), reply.get("transfer"), timeout)

        return await read_whole(lambda: self._send("workflow.get", {}, timeout), read)

    async def summary(self, *, timeout: float | None = None) -> JSON:
        """Status, durations, counts, progress, objectives and KPIs (get_workflow_summary)."""
        return await self._send("workflow.summary", {}, timeout)  # type: ignore[no-any-return]

    async def start(self, *, timeout: float | None = None) -> JSON:
        """pending → in_progress."""
        return await self._send("workflow.start", {}, timeout)  # type: ignore[no-any-return]

    async def complete(self, *, timeout: float | None = None) -> JSON:
        """in_progress → completed."""
        return await self._send("workflow.complete", {}, timeout)  # type: ignore[no-any-return]

    async def fail(self, reason: str, *, timeout: float | None = None) -> JSON:
        """pending | in_progress → failed, with the reason."""
        return await self._send("workflow.fail", {"reason": reason}, timeout)  # type: ignore[no-any-return]

    async def cancel(self, reason: str | None = None, *, timeout: float | None = None) -> JSON:
        """pending | in_progress → cancelled."""
        return await self._send("workflow.cancel", fields({"reason": reason}), timeout)  # type: ignore[no-any-return]

    async def pause(self, reason: str | None = None, *, timeout: float | None = None) -> PauseState:
        """Stops offering this workflow's work orders until resume(): attempts out go on, orders still queue; pausing again changes nothing."""
        return await self._send("workflow.pause", fields({"reason": reason}), timeout)  # type: ignore[no-any-return]

    async def resume(self, *, timeout: float | None = None) -> PauseState:
        """Offers a paused workflow's queued work orders again, at once; resuming one not paused changes nothing."""
        return await self._send("workflow.resume", {}, timeout)  # type: ignore[no-any-return]

    async def update_progress(self, stage: str, percentage: float, *, timeout: float | None = None) -> JSON:
        """Sets a stage's progress, 0..100 (update_progress)."""
        return (await self._send("workflow.progress", {"stage": stage, "percentage": percentage}, timeout))["item"]  # type: ignore[no-any-return]

    async def add_step(self, name: str, *, id: str | None = None, description: str | None = None, start: bool | None = None,
                       agent_id: str | None = None, work_order_id: str | None = None, timeout: float | None = None) -> JSON:
        """Adds an execution step; `start=True` starts it at once."""
        payload = fields({"name": name, "id": id, "description": description, "start": start, "agent_id": agent_id, "work_order_id": work_order_id})
        return (await self._send("step.add", payload, timeout))["item"]  # type: ignore[no-any-return]

    async def start_step(self, step_id: str, *, timeout: float | None = None) -> JSON:
        """pending → running."""
        return (await self._send("step.start", {"stepId": step_id}, timeout))["item"]  # type: ignore[no-any-return]

    async def complete_step(self, step_id: str, result: Any = None, *, timeout: float | None = None) -> JSON:
        """running → completed, with an optional result."""
        return (await self._send("step.complete", fields({"step_id": step_id, "result": result}), timeout))["item"]  # type: ignore[no-any-return]

    async def fail_step(self, step_id: str, error: str, *, timeout: float | None = None) -> JSON:
        """pending | running → failed, with the error."""
        return (await self._send("step.fail", {"stepId": step_id, "error": error}, timeout))["item"]  # type: ignore[no-any-return]

    async def add_objective(self, name: str, *, description: str | None = None, target: str | None = None,
                            priority: str | None = None, id: str | None = None, timeout: float | None = None) -> JSON:
        """Adds an objective with a free-text target (add_objective)."""
        payload = fields({"name": name, "description": description, "target": target, "priority": priority, "id": id})
        return (await self._send("objective.add", payload, timeout))["item"]  # type: ignore[no-any-return]

    async def update_objective(self, objective_id: str, *, timeout: float | None = None, **changes: Any) -> JSON:
        """Changes an objective's status, progress or fields."""
        return (await self._send("objective.update", {**fields(changes), "objectiveId": objective_id}, timeout))["item"]  # type: ignore[no-any-return]

    async def add_kpi(self, name: str, target: float, *, unit: str | None = None, description: str | None = None,
                      direction: str | None = None, id: str | None = None, timeout: float | None = None) -> JSON:
        """Adds a KPI with a numeric target; direction "higher" (default) or "lower" is better (add_kpi)."""
        payload = fields({"name": name, "target": target, "unit": unit, "description": description, "direction": direction, "id": id})
        return (await self._send("kpi.add", payload, timeout))["item"]  # type: ignore[no-any-return]

    async def record_kpi(self, kpi_id: str, value: float, *, timeout: float | None = None) -> JSON:
        """Records a KPI value; the history is kept and `met` re-evaluated."""
        return (await self._send("kpi.record", {"kpiId": kpi_id, "value": value}, timeout))["item"]  # type: ignore[no-any-return]

    async def report(self, fmt: str = "markdown", *, timeout: float | None = None) -> JSON:
        """A report of the workflow as it is now (json, markdown or html), with its version and content hash."""
        return await read_whole(lambda: self._connection.request("workflow.report", {"workflowId": self.id, "format": fmt}, timeout),
                                lambda reply: with_body(self._connection, reply, timeout))

    async def generate_reports(self, *, timeout: float | None = None) -> JSON:
        """Writes report.json, report.md and report.html to the workflow's output folder (generate_all_reports)."""
        return await self._connection.request("workflow.generateReports", {"workflowId": self.id}, timeout)  # type: ignore[no-any-return]

    async def create_work_order(self, task_type: str, *, timeout: float | None = None, **order: Any) -> JSON:
        """Creates a work order (input, requirements, priority, dependencies, …); one with an `id` is safe to resend after a drop."""
        payload = {**fields(order), "taskType": task_type, "workflowId": self.id}
        order_id = payload.get("id")
        if order_id is None:
            return (await self._send("workOrder.create", payload, timeout))["item"]  # type: ignore[no-any-return]
        reply = await self._connection.create_once(
            f"order {self.id} {order_id}", "workOrder.create", payload,
            lambda: self._connection.request("workOrder.get", {"workflowId": self.id, "workOrderId": order_id}, timeout), timeout,
        )
        self.version = max(self.version, reply["version"])
        return reply["item"]  # type: ignore[no-any-return]

    async def create_work_orders(self, orders: list[JSON], *, timeout: float | None = None) -> list[JSON]:
        """Creates up to 1000 work orders at once, all or none; with every `id` given, safe to resend after a drop."""
        converted = [fields(order) for order in orders]
        ids = [order.get("id") for order in converted]
        if not all(ids):
            return (await self._send("workOrder.createMany", {"orders": converted}, timeout))["items"]  # type: ignore[no-any-return]

        async def existing() -> JSON:
            # A resend refused as CONFLICT after a try that may have landed: that try created them all (all or none).
            found = await asyncio.gather(*(self._connection.request("workOrder.get", {"workflowId": self.id, "workOrderId": order_id}, timeout)
                                           for order_id in ids))
            return {"items": [reply["item"] for reply in found], "version": max(reply["version"] for reply in found)}

        reply = await self._connection.create_once(
            f"orders {self.id} {' '.join(str(order_id) for order_id in ids)}", "workOrder.createMany",
            {"orders": converted, "workflowId": self.id}, existing, timeout,
        )
        if isinstance(reply.get("version"), int):
            self.version = max(self.version, reply["version"])
        return reply["items"]  # type: ignore[no-any-return]

    async def get_work_order(self, work_order_id: str, *, timeout: float | None = None) -> JSON:
        """One work order."""
        return (await self._send("workOrder.get", {"workOrderId": work_order_id}, timeout))["item"]  # type: ignore[no-any-return]

    async def list_work_orders(self, *, state: str | None = None, limit: int | None = None, cursor: str | None = None, timeout: float | None = None) -> JSON:
        """One page of work orders in creation order; `nextCursor` asks for the next."""
        return await self._send("workOrder.list", fields({"state": state, "limit": limit, "cursor": cursor}), timeout)  # type: ignore[no-any-return]

    def work_orders(self, *, state: str | None = None, limit: int | None = None, timeout: float | None = None) -> AsyncIterator[JSON]:
        """Every work order in creation order, optionally by state, a page at a time (`async for`)."""
        return pages(lambda cursor: self.list_work_orders(state=state, limit=limit, cursor=cursor, timeout=timeout))

    async def cancel_work_order(self, work_order_id: str, reason: str | None = None, *, timeout: float | None = None) -> JSON:
        """Cancels a work order; an agent running it is told to stop (its ctx.cancelled is set)."""
        return (await self._send("workOrder.cancel", fields({"work_order_id": work_order_id, "reason": reason}), timeout))["item"]  # type: ignore[no-any-return]

    async def retry_work_order(self, work_order_id: str, *, timeout: float | None = None) -> JSON:
        """Puts a failed work order back in the queue with a fresh budget of attempts, or offers a queued one again to the agents that declined it."""
        return (await self._send("workOrder.retry", {"workOrderId": work_order_id}, timeout))["item"]  # type: ignore[no-any-return]

    async def auto_assign(self, *, timeout: float | None = None) -> list[JSON]:
        """auto_assign_work_orders(), for parity: runs an assignment pass and lists the current assignments."""
        return (await self._send("workflow.autoAssign", {}, timeout))["assigned"]  # type: ignore[no-any-return]

    async def add_data_reference(self, path: str, *, timeout: float | None = None, **ref: Any) -> JSON:
        """Registers a data reference (add_data_reference): description, data_type, tags, metadata, derived_from, …."""
        return (await self._send("data.register", {**fields(ref), "path": path}, timeout))["item"]  # type: ignore[no-any-return]

    async def add_data_references(self, items: list[JSON], *, timeout: float | None = None) -> list[JSON]:
        """Registers up to 1000 data references at once, all or none."""
        return (await self._send("data.registerMany", {"items": [fields(item) for item in items]}, timeout))["items"]  # type: ignore[no-any-return]

    async def update_data_reference(self, data_id: str, *, timeout: float | None = None, **changes: Any) -> JSON:
        """Makes a new version of a data reference; the previous one joins its history."""
        return (await self._send("data.update", {**fields(changes), "dataId": data_id}, timeout))["item"]  # type: ignore[no-any-return]

    async def validate_data_reference(self, data_id: str, *, timeout: float | None = None) -> JSON:
        """Re-checks a local file: valid, missing, or changed."""
        return (await self._send("data.validate", {"dataId": data_id}, timeout))["item"]  # type: ignore[no-any-return]

    async def get_data_reference(self, data_id: str, *, timeout: float | None = None) -> JSON:
        """One data reference with its provenance and history."""
        return (await self._send("data.get", {"dataId": data_id}, timeout))["item"]  # type: ignore[no-any-return]

    async def search_data(self, *, timeout: float | None = None, **filter: Any) -> JSON:
        """One page of data references (data_type, tags, text, agent_id, source, status, sort, order, limit, cursor)."""
        return await self._send("data.search", fields(filter), timeout)  # type: ignore[no-any-return]

    def data_references(self, *, timeout: float | None = None, **filter: Any) -> AsyncIterator[JSON]:
        """Every data reference the filter matches, a page at a time (`async for`)."""
        return pages(lambda cursor: self.search_data(**filter, cursor=cursor, timeout=timeout))

    async def link_lineage(self, operation: str, inputs: list[str], outputs: list[str], *, timeout: float | None = None, **link: Any) -> JSON:
        """Links input references to output references through an operation."""
        return (await self._send("lineage.link", {**fields(link), "operation": operation, "inputs": inputs, "outputs": outputs}, timeout))["item"]  # type: ignore[no-any-return]

    async def upstream(self, data_id: str, max_depth: int | None = None, limit: int | None = None, *, timeout: float | None = None) -> JSON:
        """What a reference was made from, nearest first."""
        return await self._send("lineage.upstream", fields({"data_id": data_id, "max_depth": max_depth, "limit": limit}), timeout)  # type: ignore[no-any-return]

    async def downstream(self, data_id: str, max_depth: int | None = None, limit: int | None = None, *, timeout: float | None = None) -> JSON:
        """What was made from a reference, nearest first."""
        return await self._send("lineage.downstream", fields({"data_id": data_id, "max_depth": max_depth, "limit": limit}), timeout)  # type: ignore[no-any-return]

    async def open_lineage_event(self, work_order_id: str, *, timeout: float | None = None) -> JSON:
        """A finished work order as an OpenLineage RunEvent, ready to POST to Marquez's /api/v1/lineage."""
        return await self._connection.request("lineage.openLineage", {"workflowId": self.id, "workOrderId": work_order_id}, timeout)  # type: ignore[no-any-return]

    async def lineage_graph(self, *, timeout: float | None = None) -> JSON:
        """The workflow's whole lineage graph, gathered from its pages (a change made meanwhile may show in the later ones only)."""
        graph = await self.lineage_graph_page(timeout=timeout)
        while graph.get("nextCursor") is not None:
            page = await self.lineage_graph_page(cursor=graph["nextCursor"], timeout=timeout)
            for key in ("nodes", "edges", "transformations"):
                graph[key].extend(page[key])
            graph["version"], graph["nextCursor"] = page["version"], page["nextCursor"]
        return graph

    async def lineage_graph_page(self, *, limit: int | None = None, cursor: str | None = None, timeout: float | None = None) -> JSON:
        """One page of the lineage graph, at most `limit` entries (1-2000, default 1000): the references first, then the
        transformations, each with its edges; `nextCursor` asks for the next."""
        return await self._send("lineage.graph", fields({"limit": limit, "cursor": cursor}), timeout)  # type: ignore[no-any-return]
