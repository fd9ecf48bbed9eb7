"""Big replies read from a transfer: one that went with a dropped connection is asked for again, not taken for a missing workflow."""

from __future__ import annotations

from typing import Any

from hub import Hub
from scenario import clients, drop, unique, until
from switchboard import ControlClient


async def big_workflow(control: ControlClient) -> Any:
    """A workflow of five 250 KB orders nobody serves: over 1 MB, so it comes as a transfer."""
    wf = await control.create_workflow(unique("over 1 MB: a transfer"))
    blob = "x" * 250_000
    await wf.create_work_orders([{"id": f"o{i}", "task_type": "nobody-serves-this", "input": blob} for i in range(3)])
    await wf.create_work_orders([{"id": f"o{i}", "task_type": "nobody-serves-this", "input": blob} for i in range(3, 5)])
    return wf


async def test_a_workflow_whose_transfer_went_with_a_dropped_connection_is_read_again_whole(hub: Hub) -> None:
    control, _monitor = await clients(hub)
    wf = await big_workflow(control)
    request = control.connection.request
    sent: list[str] = []

    async def dropping_before_the_first_read(event: str, payload: dict[str, Any], timeout: float | None = None) -> Any:
        if event == "transfer.read" and "transfer.read" not in sent:
            # The transfer was that connection's: read on the next one, it is NOT_FOUND.
            drops = control.connection.drops
            await drop(control.connection)
            await until(lambda: control.connection.drops > drops and control.connection.connected, "the client back on a new connection")
        sent.append(event)
        return await request(event, payload, timeout)

    control.connection.request = dropping_before_the_first_read  # type: ignore[method-assign]
    state = await wf.get()
    assert sorted(state["workOrders"]) == [f"o{i}" for i in range(5)]
    assert sent.count("workflow.get") == 2
