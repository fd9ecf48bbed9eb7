"""The synchronous wrapper drives the same clients from a plain script."""

from __future__ import annotations

import asyncio
import os
import queue
import signal
import socket
import threading
from types import SimpleNamespace
from typing import Any

import pytest

from conftest import SCENARIO_TIMEOUT_S
from hub import TOKENS, Hub
from switchboard import HubError, MirrorChange
from switchboard.sync import Blocking, connect_agent, connect_control, connect_monitor


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


def test_a_scripts_mirrors_from_subscribe_all_and_docs_block_like_those_from_subscribe(hub: Hub) -> None:
    with connect_control(hub.url, TOKENS["admin"]) as control, connect_monitor(hub.url, TOKENS["monitor"]) as monitor:
        wf = control.create_workflow("followed from a script")
        one = monitor.subscribe(wf.id)
        assert one.until(lambda state, _: state["id"] == wf.id, timeout=SCENARIO_TIMEOUT_S)["id"] == wf.id  # blocks, returns the state
        mirrors = monitor.subscribe_all()
        # Were they the async mirrors, until() would hand back a coroutine that never runs.
        for mirror in (mirrors[wf.id], monitor.docs[wf.id], dict(mirrors)[wf.id]):
            state = mirror.until(lambda s, _: s["id"] == wf.id, timeout=SCENARIO_TIMEOUT_S)
            if asyncio.iscoroutine(state):
                state.close()
            assert isinstance(state, dict) and state["id"] == wf.id
        appeared: queue.Queue[Any] = queue.Queue()
        monitor.on("doc", appeared.put)
        later = control.create_workflow("created after subscribe_all")
        while (new := appeared.get(timeout=SCENARIO_TIMEOUT_S)).doc != later.id:
            pass
        # The mirror a `doc` listener got blocks too: a script keeps it and waits on it.
        assert new.until(lambda s, _: s["id"] == later.id, timeout=SCENARIO_TIMEOUT_S)["id"] == later.id
        # The mapping is live, as the async one: it gains the workflows created later, and they block too.
        assert mirrors[later.id].until(lambda s, _: s["id"] == later.id, timeout=SCENARIO_TIMEOUT_S)["id"] == later.id


def test_a_scripts_mirror_state_does_not_change_under_it_while_the_loop_applies_patches(hub: Hub) -> None:
    with connect_control(hub.url, TOKENS["admin"]) as control, connect_monitor(hub.url, TOKENS["monitor"]) as monitor:
        wf = control.create_workflow("read at leisure")
        mirror = monitor.subscribe(wf.id)
        before = mirror.state
        held = mirror.until(lambda state, _: state["status"] == "pending", timeout=SCENARIO_TIMEOUT_S)
        wf.start()
        mirror.until(lambda state, _: state["status"] == "in_progress", timeout=SCENARIO_TIMEOUT_S)
        # The loop's thread patches the live state in place: a script iterating it would see it change (or fail mid-loop).
        assert before["status"] == "pending" and held["status"] == "pending"
        assert mirror.state["status"] == "in_progress"


def test_a_handler_decorated_in_a_script_stays_a_plain_function_of_the_script(hub: Hub) -> None:
    with connect_control(hub.url, TOKENS["admin"]) as control, \
            connect_agent(hub.url, TOKENS["agent"], agent_id="sync-decorated") as agent:
        def clean(task: Any, ctx: Any) -> dict[str, Any]:
            control.list_agents()  # a blocking call: fine in the handler's thread, refused on the clients' loop thread
            return {"thread": threading.current_thread().name}

        decorated = agent.task("sync_decorated")(clean)
        agent.ready()
        # Called directly (a unit test of the handler), it runs here, not on the clients' loop thread.
        assert decorated is clean and decorated(None, None) == {"thread": threading.current_thread().name}
        wf = control.create_workflow("a decorated handler")
        wf.start()
        order = wf.create_work_order("sync_decorated")
        with connect_monitor(hub.url, TOKENS["monitor"]) as monitor:
            monitor.subscribe(wf.id).until(lambda s, _: s["workOrders"][order["id"]]["state"] == "completed", timeout=SCENARIO_TIMEOUT_S)
        assert wf.get_work_order(order["id"])["result"]["thread"] != threading.current_thread().name  # the agent ran it too


def test_an_error_a_script_reads_from_a_client_is_the_hub_error_itself() -> None:
    # What connection.last_error holds after a refused reconnection: raised and caught as a HubError, not a wrapper.
    refusal = HubError("RATE_LIMITED", "too many failed logins")
    read = Blocking(SimpleNamespace(last_error=refusal)).last_error
    assert read is refusal
    with pytest.raises(HubError):
        raise read


def test_ctrl_c_during_a_blocking_connect_cancels_it_on_the_clients_loop() -> None:
    # A node that takes the TCP connection and never answers: the connect waits there until its deadline.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        accepted: queue.Queue[socket.socket] = queue.Queue()

        def interrupt() -> None:
            connection, _ = silent.accept()
            accepted.put(connection)
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C does to a script blocked in the call
        threading.Thread(target=interrupt, daemon=True).start()
        with pytest.raises(KeyboardInterrupt):
            connect_agent(url, TOKENS["agent"], agent_id="interrupted", connect_timeout=120)
        # Cancelled, the connect hangs up at once; left running, it would hold the socket until its deadline, then
        # (on a cluster's next node) register an agent nobody holds.
        with accepted.get(timeout=SCENARIO_TIMEOUT_S) as connection:
            connection.settimeout(SCENARIO_TIMEOUT_S)
            while connection.recv(65536):
                pass
