"""A control client drives a workflow: lifecycle, objectives, KPIs, steps, progress, data, reports, errors."""

from __future__ import annotations

import asyncio
import hashlib
import http.server
import itertools
import math
import os
import signal
import socket
import threading
from pathlib import Path

import aiohttp
import pytest

from hub import TOKENS, Hub
from scenario import lose_answer, requests_made
from switchboard import HubError, connect_agent, connect_control
from switchboard.connect_error import unreachable

#: Ids of agents no other run of the pool-paging test on the shared hub uses.
PAGE_NAMES = itertools.count(1)


async def test_a_workflow_runs_its_lifecycle_and_reports_it(hub: Hub) -> None:
    async with await connect_control(hub.url, TOKENS["admin"]) as control:
        wf = await control.create_workflow("Analyze customer data", config={"enable_data_validation": False})
        assert (await wf.start())["status"] == "in_progress"
        objective = await wf.add_objective("Data Analysis", target="100% completion", priority="high")
        kpi = await wf.add_kpi("Processing Speed", 1000, unit="records/minute")
        step = await wf.add_step("load", start=True)
        await wf.update_progress("data_loading", 50)
        assert (await wf.record_kpi(kpi["id"], 1250))["met"] is True
        assert (await wf.complete_step(step["id"], {"rows": 3}))["status"] == "completed"
        await wf.update_objective(objective["id"], status="completed", progress=100)
        ref = await wf.add_data_reference("s3://lake/customers.csv", description="customers", tags=["raw"])
        assert ref["provenance"]["source"] == "external"
        found = await wf.search_data(tags=["raw"])
        assert [item["id"] for item in found["items"]] == [ref["id"]]
        assert (await wf.complete())["status"] == "completed"

        summary = await wf.summary()
        assert (summary["status"], summary["progress"]) == ("completed", 100)
        assert (summary["steps"]["completed"], summary["objectives"]["completed"], summary["kpis"]["met"]) == (1, 1, 1)
        for fmt in ("json", "markdown", "html"):
            report = await wf.report(fmt)
            assert report["version"] == wf.version and report["format"] == fmt
            blanked = report["body"].replace(report["hash"], "0" * 64)
            assert hashlib.sha256(blanked.encode()).hexdigest() == report["hash"]
        assert [w["id"] async for w in control.workflows() if w["id"] == wf.id] == [wf.id]
        later = await control.create_workflow("newest", id="zz-py-newest")  # after wf_… by id too, should both share a millisecond
        newest = await control.list_workflows(order="desc", limit=1)
        assert [w["id"] for w in newest["items"]] == [later.id]
        assert [w["id"] async for w in control.workflows(order="desc", limit=1)][:2] == [later.id, wf.id]


async def test_refusals_are_hub_errors_with_the_contracts_codes(hub: Hub) -> None:
    async with await connect_control(hub.url, TOKENS["admin"]) as control:
        wf = await control.create_workflow("codes", id="py-codes")
        with pytest.raises(HubError) as refused:
            await wf.complete()
        assert refused.value.code == "INVALID_TRANSITION"
        with pytest.raises(HubError) as missing:
            await control.workflow("py-nowhere").summary()
        assert missing.value.code == "NOT_FOUND"
        with pytest.raises(HubError) as invalid:
            await wf.update_progress("stage", 250)
        assert invalid.value.code == "VALIDATION" and invalid.value.issues
        with pytest.raises(HubError) as duplicate:
            await control.create_workflow("again", id="py-codes-dup")
            await control.connection.request("workflow.create", {"id": "py-codes-dup", "userQuery": "again"})
        assert duplicate.value.code == "CONFLICT"


async def test_a_value_json_cannot_hold_is_refused_before_it_is_sent(hub: Hub) -> None:
    async with await connect_control(hub.url, TOKENS["admin"]) as control:
        wf = await control.create_workflow("not json")
        kpi = await wf.add_kpi("accuracy", 0.9)
        drops: list[None] = []
        control.connection.on_disconnect(lambda: drops.append(None))
        # Python's json writes NaN and Infinity bare; the hub could not parse them and dropped the connection.
        for value in (float("nan"), float("inf")):
            with pytest.raises(ValueError, match="kpi.record cannot be sent: value is (nan|inf), which JSON cannot hold"):
                await wf.record_kpi(kpi["id"], value)
        assert (await wf.record_kpi(kpi["id"], 0.95))["samples"] == 1
        assert drops == [] and control.connection.connected


async def test_a_payload_the_hub_would_not_get_as_sent_is_refused_naming_where(hub: Hub) -> None:
    async with await connect_control(hub.url, TOKENS["admin"]) as control:
        wf = await control.create_workflow("changed on the way")
        # An int64 id: the hub reads numbers as doubles, and would store 9223372036854776000.
        with pytest.raises(ValueError, match=r"workOrder.create cannot be sent: input.rows\[1\].customer_id is 9223372036854775807, a whole number beyond"):
            await wf.create_work_order("big ids", id="o1", input={"rows": [{"customer_id": 1}, {"customer_id": 2**63 - 1}]})
        # json writes the int key as "1": of the two, the hub would keep one without a word.
        with pytest.raises(TypeError, match=r"workOrder.create cannot be sent: input has the key 1 \(int\)"):
            await wf.create_work_order("colliding keys", id="o2", input={1: "the int key", "1": "the str key"})
        # Nested past Python's recursion limit: checking or writing it raised a bare RecursionError.
        deep: object = 1
        for _ in range(100_000):
            deep = [deep]
        with pytest.raises(ValueError, match=r"workOrder.create cannot be sent: input(\[0\]){63} is nested deeper than 64 levels"):
            await wf.create_work_order("deep", id="o4", input=deep)
        assert [order async for order in wf.work_orders()] == []
        # The largest exact whole number goes as it is.
        order = await wf.create_work_order("exact", id="o3", input={"customer_id": 2**53 - 1, "flag": True})
        assert (await wf.get_work_order(order["id"]))["input"] == {"customer_id": 2**53 - 1, "flag": True}


async def test_a_create_given_its_own_id_is_tried_once_after_close_as_one_without_an_id(hub: Hub) -> None:
    # A short timeout, so that a loop of resends would end (three timeouts).
    control = await connect_control(hub.url, TOKENS["admin"], request_timeout=0.2)
    await control.close()
    made = requests_made(control.connection)
    for own_id in (None, "wf-after-close"):
        with pytest.raises(HubError) as refused:
            await control.create_workflow("after close", id=own_id)
        assert refused.value.code == "DISCONNECTED"
    assert made == ["workflow.create", "workflow.create"]


async def test_closing_a_client_ends_a_create_given_its_own_id_in_flight(hub: Hub) -> None:
    control = await connect_control(hub.url, TOKENS["admin"], request_timeout=0.2)
    made = requests_made(control.connection)
    create = asyncio.ensure_future(control.create_workflow("closed under it", id="wf-closing"))
    await asyncio.sleep(0)  # on its way before close()
    await control.close()
    with pytest.raises(HubError) as closed:
        await create
    assert closed.value.code == "DISCONNECTED"
    assert made == ["workflow.create"]


async def test_a_refused_token_fails_the_connection_with_its_code(hub: Hub) -> None:
    with pytest.raises(HubError) as unknown:
        await connect_control(hub.url, "not-a-token")
    assert unknown.value.code == "UNAUTHENTICATED"
    assert f"the hub at {hub.url} refused the token" in unknown.value.message
    assert "`npx switchboard tokens list`" in unknown.value.message and "tokens.json" in unknown.value.message
    with pytest.raises(HubError) as wrong_role:
        await connect_control(hub.url, TOKENS["agent"])
    assert wrong_role.value.code == "FORBIDDEN"
    assert "connect_control takes an admin token" in wrong_role.value.message
    with pytest.raises(HubError) as bad_url:
        await connect_control(hub.url + "/socket", TOKENS["admin"])
    assert bad_url.value.code == "VALIDATION"


async def test_a_hub_that_cannot_be_reached_fails_the_connection_saying_why_and_what_to_do(hub: Hub) -> None:
    async def failure(url: str) -> str:
        with pytest.raises(HubError) as failed:
            await connect_control(url, TOKENS["admin"], connect_timeout=5)
        assert failed.value.code == "DISCONNECTED"
        return failed.value.message

    assert "does not resolve: check the URL" in await failure("http://nohost.invalid:4700")
    tls = await failure(hub.url.replace("http://", "https://"))
    assert "TLS" in tls and "use http://" in tls
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        nobody = f"http://127.0.0.1:{free.getsockname()[1]}"
    refused = await failure(nobody)
    assert "ECONNREFUSED" in refused and "Is the hub running? Start it with `npx switchboard start`." in refused
    async def failure_at_web_server(handler: type[http.server.BaseHTTPRequestHandler]) -> str:
        web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=web.serve_forever, daemon=True).start()
        try:
            return await failure(f"http://127.0.0.1:{web.server_address[1]}")
        finally:
            web.shutdown()
            web.server_close()

    other = await failure_at_web_server(http.server.SimpleHTTPRequestHandler)
    assert "HTTP 404" in other and "is not a Switchboard hub" in other and "Is the hub running" not in other
    # A proxy whose hub behind it is down answers 502: the URL is right, the hub is not up.
    gateway = await failure_at_web_server(_BadGateway)
    assert "HTTP 502" in gateway and "is the hub behind it running?" in gateway and "is not a Switchboard hub" not in gateway


def test_a_handshake_refused_with_400_at_a_host_name_points_at_allowed_hosts() -> None:
    # What a hub answers a WebSocket handshake naming a host outside its allowedHosts.
    refused = aiohttp.WSServerHandshakeError(None, (), status=400)  # type: ignore[arg-type]
    by_name = unreachable("http://hub.example:4700", refused, "Connection error").message
    assert "HTTP 400" in by_name and "--allowed-hosts hub.example" in by_name
    # A hub answers to an IP address or localhost whatever its allowedHosts: there, 400 is another server.
    for url in ("http://127.0.0.1:4700", "http://[::1]:4700", "http://localhost:4700"):
        other = unreachable(url, refused, "Connection error").message
        assert "is not a Switchboard hub" in other and "allowedHosts" not in other


class _BadGateway(http.server.BaseHTTPRequestHandler):
    """A reverse proxy (nginx, a load balancer) whose hub behind it is down: 502 to every request."""

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(502)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


async def test_a_request_too_big_for_the_hub_fails_with_validation_is_not_sent_again_and_changes_nothing(tmp_path: Path) -> None:
    small = Hub(tmp_path, {"maxHttpBufferSize": 64 * 1024}).start()
    try:
        control = await connect_control(small.url, TOKENS["admin"], request_timeout=1)
        try:
            wf = await control.create_workflow("big input")
            sio = control.connection._sio
            emit, creates = sio.emit, []

            async def counting(event: str, *args: object, **kwargs: object) -> object:
                if event == "workOrder.create":
                    creates.append(event)
                return await emit(event, *args, **kwargs)

            sio.emit = counting
            # Within the order's own bound (256 KiB), over the hub's message size: the hub closes the connection at it.
            with pytest.raises(HubError) as refused:
                await wf.create_work_order("t", id="big", input="x" * 100_000)
            assert refused.value.code == "VALIDATION"
            assert refused.value.message.startswith("workOrder.create was not read by the hub: its message (about ")
            assert "larger than the hub's maxHttpBufferSize" in refused.value.message
            assert len(creates) == 1
            # The client reconnects on its own, and the order was never made.
            with pytest.raises(HubError) as missing:
                await wf.get_work_order("big")
            assert missing.value.code == "NOT_FOUND"
        finally:
            await control.close()
    finally:
        small.stop()


async def test_a_negative_or_nan_timeout_is_refused_and_an_infinite_one_waits(hub: Hub) -> None:
    # Taken as "at once" before: a request failed with TIMEOUT, a connection with DISCONNECTED "within -1 s".
    for options, name in (({"request_timeout": -1}, "request_timeout"), ({"connect_timeout": -1}, "connect_timeout"),
                          ({"request_timeout": math.nan}, "request_timeout"), ({"connect_timeout": math.nan}, "connect_timeout")):
        with pytest.raises(HubError) as refused:
            await connect_control(hub.url, TOKENS["admin"], **options)
        assert refused.value.code == "VALIDATION"
        assert refused.value.message.startswith(f"{name} must be a number of seconds, 0 or more (math.inf: no limit); got ")
    control = await connect_control(hub.url, TOKENS["admin"], request_timeout=math.inf, connect_timeout=math.inf)
    try:
        wf = await control.create_workflow("no time limit")
        assert (await control.connection.request("workflow.get", {"workflowId": wf.id}, timeout=math.inf))["workflow"]["id"] == wf.id
        with pytest.raises(HubError) as refused:
            await control.connection.request("workflow.get", {"workflowId": wf.id}, timeout=-0.5)
        assert (refused.value.code, refused.value.message) == ("VALIDATION", "timeout must be a number of seconds, 0 or more (math.inf: no limit); got -0.5")
    finally:
        await control.close()


async def test_work_orders_created_with_ids_are_sent_again_after_a_lost_answer_and_found_created(hub: Hub) -> None:
    async with await connect_control(hub.url, TOKENS["admin"]) as control:
        wf = await control.create_workflow("orders with ids, answer lost")
        lost = lose_answer(control.connection, "workOrder.createMany")
        orders = [{"id": "a", "task_type": "py-nobody"}, {"id": "b", "task_type": "py-nobody", "dependencies": ["a"]}]
        # The first try creates both and its answer is lost to a drop; the resend's CONFLICT is that try's success.
        items = await wf.create_work_orders(orders)
        assert lost.is_set()
        assert [(item["id"], item["dependencies"]) for item in items] == [("a", []), ("b", ["a"])]
        assert [order["id"] async for order in wf.work_orders()] == ["a", "b"]
        assert wf.version == (await wf.get_versioned())[0]


async def test_a_finished_work_order_exports_as_an_open_lineage_event(hub: Hub) -> None:
    async with await connect_control(hub.url, TOKENS["admin"]) as control:
        wf = await control.create_workflow("open lineage export")
        await wf.start()
        order = await wf.create_work_order("py_openlineage", id="py-ol-order")
        await wf.cancel_work_order(order["id"], "not needed")
        event = await wf.open_lineage_event(order["id"])
        assert event["eventType"] == "ABORT" and event["job"]["name"].startswith(wf.id)
        with pytest.raises(HubError) as missing:
            await wf.open_lineage_event("py-ol-nowhere")
        assert missing.value.code == "NOT_FOUND"


async def test_the_agent_pool_reads_a_page_at_a_time_from_a_cursor(hub: Hub) -> None:
    prefix = f"py-pool-page-{next(PAGE_NAMES)}"
    agents = [await connect_agent(hub.url, TOKENS["agent"], agent_id=f"{prefix}-{letter}") for letter in "abc"]
    try:
        async with await connect_control(hub.url, TOKENS["admin"]) as control:
            # The cursor is a place in id order: the prefix sorts just before the ids it starts.
            first = await control.list_agents_page(limit=2, cursor=prefix)
            assert [agent["id"] for agent in first["items"]] == [f"{prefix}-a", f"{prefix}-b"]
            assert first["nextCursor"] == f"{prefix}-b" and isinstance(first["version"], int)
            second = await control.list_agents_page(limit=1, cursor=first["nextCursor"])
            assert [agent["id"] for agent in second["items"]] == [f"{prefix}-c"]
            # Without a limit, the hub's page of 100 from the start: the pool's first agents in id order.
            whole = await control.list_agents()
            assert [agent["id"] for agent in (await control.list_agents_page())["items"]] == [agent["id"] for agent in whole][:100]
            for bad in ({"limit": 0}, {"limit": 1001}, {"cursor": "x" * 201}):
                with pytest.raises(HubError) as refused:
                    await control.list_agents_page(**bad)
                assert refused.value.code == "VALIDATION"
    finally:
        await asyncio.gather(*(agent.close() for agent in agents))


async def test_a_lineage_graph_reads_a_page_at_a_time_and_its_pages_make_the_whole_graph(hub: Hub) -> None:
    async with await connect_control(hub.url, TOKENS["admin"]) as control:
        wf = await control.create_workflow("lineage graph by pages")
        raw = await wf.add_data_reference("s3://lake/raw.csv")
        clean = await wf.add_data_reference("s3://lake/clean.csv")
        await wf.link_lineage("clean", [raw["id"]], [clean["id"]])
        whole = await wf.lineage_graph()
        # Two nodes, one transformation and its one edge: four entries, in pages of at most three.
        first = await wf.lineage_graph_page(limit=3)
        assert first["nextCursor"] is not None
        rest = await wf.lineage_graph_page(limit=3, cursor=first["nextCursor"])
        assert rest["nextCursor"] is None
        for key in ("nodes", "edges", "transformations"):
            assert first[key] + rest[key] == whole[key]
        assert sum(len(first[key]) for key in ("nodes", "edges", "transformations")) == 3
        assert (await wf.lineage_graph_page())["nextCursor"] is None
        for bad in ({"limit": 0}, {"limit": 2001}, {"cursor": "not-a-cursor"}):
            with pytest.raises(HubError) as refused:
                await wf.lineage_graph_page(**bad)
            assert refused.value.code == "VALIDATION"


async def test_a_call_given_its_own_timeout_waits_that_long_for_its_answer_whatever_the_clients(own_hub: Hub) -> None:
    control = await connect_control(own_hub.url, TOKENS["admin"], request_timeout=0.5)
    try:
        wf = await control.create_workflow("per-call timeouts")
        with pytest.raises(HubError) as refused:
            await wf.summary(timeout=-1)
        assert refused.value.code == "VALIDATION" and refused.value.message.startswith("timeout must be a number of seconds")
        process = own_hub._process
        assert process is not None
        os.kill(process.pid, signal.SIGSTOP)  # the hub reads nothing until SIGCONT: every request goes unanswered
        try:
            patient = asyncio.ensure_future(wf.summary(timeout=math.inf))
            with pytest.raises(HubError) as short:
                await control.get_agent("nobody", timeout=0.2)
            assert (short.value.code, short.value.message) == ("TIMEOUT", f"agent.get got no answer from the hub at {own_hub.url} within 0.2 s")
            # Past the client's request_timeout too: the call given no limit still waits.
            with pytest.raises(HubError) as default:
                await control.list_workflows()
            assert default.value.code == "TIMEOUT" and not patient.done()
        finally:
            os.kill(process.pid, signal.SIGCONT)
        assert (await patient)["id"] == wf.id
        # A call that gave up early leaves the connection as it was.
        assert (await control.list_agents_page(limit=1, timeout=5))["items"] == []
    finally:
        await control.close()
