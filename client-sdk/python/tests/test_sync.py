"""The synchronous wrapper drives the same clients from a plain script."""

from __future__ import annotations

import queue

import pytest

from conftest import SCENARIO_TIMEOUT_S
from hub import TOKENS, Hub
from switchboard import HubError, MirrorChange
from switchboard.sync import connect_control, connect_monitor


def test_a_script_drives_a_workflow_without_asyncio(hub: Hub) -> None:
    with connect_control(hub.url, TOKENS["admin"]) as control:
        wf = control.create_workflow("nightly load")
        assert wf.start()["status"] == "in_progress"
        wf.add_kpi("rows", 10, unit="rows")
        assert wf.summary()["kpis"]["total"] == 1
        assert [w["id"] for w in control.workflows() if w["id"] == wf.id] == [wf.id]
        with pytest.raises(HubError) as refused:
            wf.start()
        assert refused.value.code == "INVALID_TRANSITION"


def test_a_blocking_call_in_a_mirror_callback_raises_instead_of_freezing_the_clients(hub: Hub) -> None:
    with connect_control(hub.url, TOKENS["admin"]) as control, connect_monitor(hub.url, TOKENS["monitor"]) as monitor:
        wf = control.create_workflow("a callback that asks the hub")
        mirror = monitor.subscribe(wf.id)
        seen: queue.Queue[str] = queue.Queue()

        def on_change(change: MirrorChange) -> None:
            # Callbacks run on the clients' loop thread: a handle needs no waiting, a request would wait on that very thread.
            handle = control.workflow(wf.id)
            try:
                seen.put(handle.get()["status"])
            except RuntimeError as error:
                seen.put(str(error))

        mirror.on_change(on_change)
        wf.start()
        assert "event loop thread" in seen.get(timeout=SCENARIO_TIMEOUT_S)
        assert wf.summary()["status"] == "in_progress"  # the clients still work
