"""The synchronous wrapper drives the same clients from a plain script."""

from __future__ import annotations

import pytest

from hub import TOKENS, Hub
from switchboard import HubError
from switchboard.sync import connect_control


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
