"""The control client: creates and drives workflows (an admin token)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from .closing import ClosesOnExit
from .connection import Connection
from .paging import pages
from .payloads import fields
from .workflow import JSON, Workflow


class ControlClient(ClosesOnExit):
    """Creates workflows and reads the agent pool; `workflow(id)` is a handle on an existing workflow."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    async def create_workflow(self, user_query: str, *, id: str | None = None, output_folder: str | None = None,
                              config: dict[str, Any] | None = None, timeout: float | None = None) -> Workflow:
        """Creates a workflow (pending) and returns its handle; one given its `id` is safe to resend after a drop."""
        payload = fields({"user_query": user_query, "id": id, "output_folder": output_folder, "config": config})
        if id is None:
            reply = await self.connection.request("workflow.create", payload, timeout)
        else:
            async def existing() -> Any:
                found = await self.connection.request("workflow.get", {"workflowId": id}, timeout)
                return {"workflow": {"id": id}, "version": found["version"]}
            reply = await self.connection.create_once(f"workflow {id}", "workflow.create", payload, existing, timeout)
        handle = Workflow(self.connection, reply["workflow"]["id"])
        handle.version = reply["version"]
        return handle

    def workflow(self, workflow_id: str) -> Workflow:
        """A handle on an existing workflow (no request is made)."""
        return Workflow(self.connection, workflow_id)

    async def list_workflows(self, *, status: str | None = None, order: str | None = None, limit: int | None = None, cursor: str | None = None,
                             timeout: float | None = None) -> JSON:
        """One page of workflows, oldest first (`order="desc"`: newest first); `nextCursor` asks for the next."""
        return await self.connection.request("workflow.list", fields({"status": status, "order": order, "limit": limit, "cursor": cursor}), timeout)  # type: ignore[no-any-return]

    def workflows(self, *, status: str | None = None, order: str | None = None, limit: int | None = None, timeout: float | None = None) -> AsyncIterator[JSON]:
        """Every workflow, oldest first (`order="desc"`: newest first), optionally by status, a page at a time (`async for`)."""
        return pages(lambda cursor: self.list_workflows(status=status, order=order, limit=limit, cursor=cursor, timeout=timeout))

    async def list_agents(self, *, timeout: float | None = None) -> list[JSON]:
        """The whole agent pool with status, load and performance, gathered from its pages (`timeout`: each page's)."""
        return [agent async for agent in self.agents(timeout=timeout)]

    def agents(self, *, limit: int = 1000, timeout: float | None = None) -> AsyncIterator[JSON]:
        """Every agent of the pool in id order, a page at a time (`async for`)."""
        return pages(lambda cursor: self.list_agents_page(limit=limit, cursor=cursor, timeout=timeout))

    async def list_agents_page(self, *, limit: int | None = None, cursor: str | None = None, timeout: float | None = None) -> JSON:
        """One page of the agent pool in id order (`limit` 1-1000, the hub's default 100); `nextCursor` asks for the next."""
        return await self.connection.request("agent.list", fields({"limit": limit, "cursor": cursor}), timeout)  # type: ignore[no-any-return]

    async def get_agent(self, agent_id: str, *, timeout: float | None = None) -> JSON:
        """One agent."""
        return await self.connection.request("agent.get", {"agentId": agent_id}, timeout)  # type: ignore[no-any-return]

    async def update_agent_status(self, agent_id: str, *, status: str | None = None, note: str | None = None, clear_note: bool = False,
                                  timeout: float | None = None) -> JSON:
        """update_agent_status: drain ("draining") or reactivate ("active") an agent, or set (or clear) its note."""
        payload: dict[str, Any] = fields({"agent_id": agent_id, "status": status, "note": note})
        if clear_note:
            payload["note"] = None
        return await self.connection.request("agent.update", payload, timeout)  # type: ignore[no-any-return]

    async def prune_archive(self, older_than_ms: int, *, timeout: float | None = None) -> list[JSON]:
        """Deletes archived workflows that ended more than `older_than_ms` ago, and lists them."""
        return (await self.connection.request("archive.prune", {"olderThanMs": older_than_ms}, timeout))["removed"]  # type: ignore[no-any-return]

    async def close(self) -> None:
        """Disconnects."""
        await self.connection.close()


async def connect_control(url: str | Sequence[str], token: str, *, request_timeout: float = 10.0, connect_timeout: float = 10.0) -> ControlClient:
    """Connects a control client (an admin token)."""
    return ControlClient(await Connection.open("control", url, token, request_timeout=request_timeout, connect_timeout=connect_timeout))
