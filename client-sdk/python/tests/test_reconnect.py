"""Clients survive a hub restart: the agent keeps its running attempt, the monitor resyncs, control requests go on."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from hub import TOKENS, Hub
from scenario import agent, clients, started, unique, until
from switchboard import HubError, Task, TaskContext, connect_agent, connect_control, connect_monitor


async def test_running_work_and_mirrors_survive_a_hub_restart(own_hub: Hub) -> None:
    hub = own_hub
    control, monitor = await clients(hub)
    kind = unique("long")
    worker = await agent(hub, kind)
    started, release = asyncio.Event(), asyncio.Event()
    attempts: list[int] = []

    @worker.task(kind)
    async def long(task: Task, ctx: TaskContext) -> str:
        attempts.append(ctx.attempt)
        started.set()
        await release.wait()
        await ctx.progress(90, "nearly there")
        return "survived"

    await worker.ready()
    wf = await control.create_workflow("restart", id="py-restart")
    await wf.start()
    mirror = await monitor.subscribe(wf.id)
    await wf.create_work_order(kind, id="long")
    await started.wait()
    await mirror.until(lambda state, _: state["workOrders"]["long"]["state"] == "running")

    await asyncio.get_running_loop().run_in_executor(None, hub.stop)
    await until(lambda: not worker.connection.connected and not monitor.connection.connected, "the clients to see the hub go")
    await asyncio.get_running_loop().run_in_executor(None, hub.start)

    agents = await control.list_agents()  # waits, unsent, for the reconnection
    assert [a["id"] for a in agents] == [worker.agent_id]
    await until(lambda: worker.connection.connected and worker._registered.is_set(), "the agent to register again")
    release.set()
    state = await mirror.until(lambda s, _: s["workOrders"]["long"]["state"] == "completed")
    order = state["workOrders"]["long"]
    assert (order["result"], order["attempts"], attempts) == ("survived", 1, [1])
    version, workflow = await wf.get_versioned()
    assert await mirror.until(lambda _, at: at >= version) == workflow and mirror.version == version


async def test_a_view_subscribed_while_the_hub_is_away_leaves_the_other_mirrors_to_resync(own_hub: Hub) -> None:
    hub = own_hub
    control, monitor = await clients(hub)
    wf = await control.create_workflow("view while away", id="py-view-away")
    mirror = await monitor.subscribe(wf.id)
    assert mirror.state["status"] == "pending"

    await asyncio.get_running_loop().run_in_executor(None, hub.stop)
    await until(lambda: not monitor.connection.connected, "the monitor to see the hub go")
    # Subscribed while away: the request waits, unsent, for the reconnection.
    view = asyncio.ensure_future(monitor.subscribe(wf.id, view={"kind": "summary"}))
    await asyncio.sleep(0)  # let it start waiting
    await asyncio.get_running_loop().run_in_executor(None, hub.start)
    summary = await view
    assert summary.state["status"] == "pending"

    await wf.start()  # waits, unsent, for the control client's reconnection
    await summary.until(lambda state, _: state["status"] == "in_progress")
    # The whole-document mirror was caught up at the reconnection too (PROTOCOL.md: subscribe again with the versions held).
    await mirror.until(lambda state, _: state["status"] == "in_progress")


async def test_each_mirror_resumes_with_the_epoch_its_version_came_in_after_a_catch_up_failed_half_way(own_hub: Hub) -> None:
    hub = own_hub
    control, monitor = await clients(hub)
    first = await control.create_workflow("caught up first", id="py-epoch-first")
    second = await control.create_workflow("asked for when the hub is busy", id="py-epoch-second")
    await monitor.subscribe(first.id)
    mirror = await monitor.subscribe(second.id)
    held = mirror.version, mirror.epoch
    assert held[1] is not None

    await asyncio.get_running_loop().run_in_executor(None, lambda: hub.stop(crash=True))
    await until(lambda: not monitor.connection.connected, "the monitor to see the hub go")
    # Once back (after a crash, a new run: a new epoch), the first mirror is caught up, then the hub is busy for the second.
    resumes: list[dict[str, Any]] = []
    request = monitor.connection.request

    async def busy_once(event: str, payload: dict[str, Any], timeout: float | None = None) -> Any:
        if event == "subscribe" and payload["doc"] == second.id:
            resumes.append(payload)
            if len(resumes) == 1:
                raise HubError("UNAVAILABLE", "the hub is busy")
        return await request(event, payload, timeout)

    monitor.connection.request = busy_once  # type: ignore[method-assign]
    await asyncio.get_running_loop().run_in_executor(None, hub.start)
    await until(lambda: len(resumes) == 2, "the second mirror asked for again")
    # Its version came in the hub's previous run: resumed with that run's epoch, never the first mirror's new one.
    assert [(r.get("version"), r.get("epoch")) for r in resumes] == [held, held]
    await second.update_progress("after", 50)
    version, workflow = await second.get_versioned()
    assert await mirror.until(lambda _, at: at >= version) == workflow
    assert mirror.epoch != held[1]


async def test_a_request_waiting_for_the_reconnection_fails_at_once_when_the_client_is_closed(own_hub: Hub) -> None:
    hub = own_hub
    control = await connect_control(hub.url, TOKENS["admin"])
    await asyncio.get_running_loop().run_in_executor(None, hub.stop)
    await until(lambda: not control.connection.connected, "the client to see the hub go")
    waiting = asyncio.ensure_future(control.list_agents())  # waits, unsent, for a reconnection that will not come
    await asyncio.sleep(0)  # let it start waiting
    await control.close()
    with pytest.raises(HubError) as closed:
        await waiting
    assert closed.value.code == "DISCONNECTED" and "was closed" in closed.value.message


class Proxy:
    """A TCP relay to the hub on 127.0.0.1 whose connections can be cut at once, as a network failure would."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.AbstractServer | None = None
        #: While set, new connections are closed at once: the client stays away, trying again.
        self.refusing = False

    async def start(self) -> Proxy:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.transport.abort()
            return
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers += [writer, upstream_writer]

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except ConnectionError:
                pass
            finally:
                sink.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    def cut(self) -> None:
        """Resets every relayed connection."""
        writers, self._writers = self._writers, []
        for writer in writers:
            writer.transport.abort()

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


async def test_an_agent_whose_reconnection_meets_the_login_throttle_connects_again_once_let_in(tmp_path: Any) -> None:
    # One unknown token at once, then one a second: past ten below empty, known tokens wait a second for the next.
    hub = Hub(tmp_path, {"failedLogins": {"burst": 1, "perMinute": 60}}).start()
    proxy = await Proxy(hub.port).start()
    opened: list[Any] = []
    try:
        control = await connect_control(hub.url, TOKENS["admin"])
        opened.append(control)
        kind = unique("throttled")
        worker = await connect_agent(f"http://127.0.0.1:{proxy.port}", TOKENS["agent"], agent_id=unique("py-agent"), agent_type="test")
        opened.append(worker)
        done: list[str] = []

        @worker.task(kind)
        async def work(task: Task, ctx: TaskContext) -> str:
            done.append(task.work_order_id)
            return "after the throttle"

        await worker.ready()
        # A guesser on the same address, far enough past its allowance that even the agent's known token is refused.
        for n in range(12):
            with pytest.raises(HubError):
                await connect_control(hub.url, f"guess-{n:04}-token")
        with pytest.raises(HubError) as refused:
            await connect_agent(hub.url, TOKENS["agent"], agent_id=unique("py-agent"), agent_type="test")
        assert refused.value.code == "RATE_LIMITED"

        proxy.cut()
        await until(lambda: not worker.connection.connected, "the agent to see its connection drop")
        await until(lambda: worker.connection.last_error is not None, "the hub to refuse the agent's reconnection")
        refusal = worker.connection.last_error
        assert refusal is not None and refusal.code == "RATE_LIMITED"
        with pytest.raises(HubError) as waited:
            await worker.connection.request("agent.heartbeat", {"attemptTokens": []}, timeout=0.05)
        assert waited.value.code == "DISCONNECTED" and "too many failed logins" in waited.value.message
        await until(lambda: worker.connection.connected and worker._registered.is_set(), "the agent to be let in again")
        assert worker.connection.last_error is None
        wf = await control.create_workflow("throttled reconnection")
        await wf.start()
        await wf.create_work_order(kind, id="after")
        await until(lambda: done == ["after"], "the agent to take work again")
        order = await wf.get_work_order("after")
        while order["state"] != "completed":  # the handler has returned; its completion is on its way
            await asyncio.sleep(0.01)
            order = await wf.get_work_order("after")
        assert (order["state"], order["result"]) == ("completed", "after the throttle")
    finally:
        await asyncio.gather(*(client.close() for client in opened), return_exceptions=True)
        await proxy.close()
        await asyncio.get_running_loop().run_in_executor(None, hub.stop)


async def test_a_monitor_takes_a_patch_of_more_than_4_mb(tmp_path: Any) -> None:
    # Every change within patchIntervalMs goes out as one patch: here over 4 MB, aiohttp's default bound.
    hub = Hub(tmp_path, {"patchIntervalMs": 3000}).start()
    opened: list[Any] = []
    try:
        control = await connect_control(hub.url, TOKENS["admin"])
        opened.append(control)
        monitor = await connect_monitor(hub.url, TOKENS["monitor"])
        opened.append(monitor)
        wf = await control.create_workflow("a big patch")
        mirror = await monitor.subscribe(wf.id)
        drops: list[bool] = []
        monitor.connection.on_disconnect(lambda: drops.append(True))
        batch = [{"task_type": unique("big"), "input": {"blob": "x" * 6000}} for _ in range(150)]
        await asyncio.gather(*(wf.create_work_orders(batch) for _ in range(6)))
        state = await mirror.until(lambda state, _: len(state["workOrders"]) == 900)
        version, workflow = await wf.get_versioned()
        assert await mirror.until(lambda _, at: at >= version) == workflow and len(state["workOrders"]) == 900
        assert drops == []
    finally:
        await asyncio.gather(*(client.close() for client in opened), return_exceptions=True)
        await asyncio.get_running_loop().run_in_executor(None, hub.stop)


async def test_a_monitor_stops_mirroring_a_workflow_its_token_no_longer_sees_after_a_reload(tmp_path: Any) -> None:
    hub = Hub(tmp_path)
    base = [{"token": t, "role": r} for r, t in TOKENS.items()]
    scoped = "py-scoped-monitor-token"
    hub.tokens_file.write_text(json.dumps([*base, {"token": scoped, "role": "monitor", "workflows": ["kept", "dropped"]}]))
    hub.start()
    opened: list[Any] = []
    try:
        control = await connect_control(hub.url, TOKENS["admin"])
        opened.append(control)
        kept = await control.create_workflow("still visible", id="kept")
        await control.create_workflow("no longer visible", id="dropped")
        monitor = await connect_monitor(hub.url, scoped)
        opened.append(monitor)
        mirror = await monitor.subscribe("dropped")
        mirror = await monitor.subscribe("kept")
        await asyncio.to_thread(hub.reload, [*base, {"token": scoped, "role": "monitor", "workflows": ["kept"]}])
        # Reconnected under the narrower scope: a catch-up answered FORBIDDEN, retried for good, kept the old state.
        await until(lambda: "dropped" not in monitor.docs, "the workflow out of scope no longer mirrored")
        await kept.update_progress("s", 10)
        await until(lambda: (mirror.state or {}).get("stages", {}).get("s", {}).get("progress") == 10, "the change to the workflow in scope")
    finally:
        await asyncio.gather(*(client.close() for client in opened), return_exceptions=True)
        hub.stop()


async def test_connect_timeout_bounds_the_first_connection_to_a_hub_that_takes_it_and_never_answers(own_hub: Hub) -> None:
    process = own_hub._process
    assert process is not None
    # Frozen, the hub's kernel still takes the TCP connection; nobody answers the WebSocket handshake.
    os.kill(process.pid, signal.SIGSTOP)
    try:
        # Far past connect_timeout: only a connection that ignores it gets there.
        with pytest.raises(HubError) as refused:
            await asyncio.wait_for(connect_control(own_hub.url, TOKENS["admin"], connect_timeout=0.5), 15)
        assert refused.value.code == "DISCONNECTED"
        assert "no answer from the hub" in refused.value.message
    finally:
        os.kill(process.pid, signal.SIGCONT)


async def test_a_first_connection_given_every_node_moves_on_from_a_frozen_one_to_the_next(own_hub: Hub, hub: Hub) -> None:
    frozen = own_hub._process
    assert frozen is not None
    os.kill(frozen.pid, signal.SIGSTOP)
    try:
        # connect_timeout is long enough for one node to be given up (after 5 s) and the next reached.
        control = await asyncio.wait_for(connect_control([own_hub.url, hub.url], TOKENS["admin"], connect_timeout=9), 20)
        try:
            assert control.connection.url == hub.url
            assert (await control.create_workflow("reached past a frozen node")).id
        finally:
            await control.close()
    finally:
        os.kill(frozen.pid, signal.SIGCONT)


async def test_a_view_that_can_no_longer_be_followed_is_dropped_at_the_catch_up_and_the_others_catch_up(tmp_path: Any) -> None:
    hub = Hub(tmp_path, {"keepFinishedMs": 0}).start()
    proxy = await Proxy(hub.port).start()
    opened: list[Any] = []
    try:
        control = await connect_control(hub.url, TOKENS["admin"])
        monitor = await connect_monitor(f"http://127.0.0.1:{proxy.port}", TOKENS["monitor"])
        opened += [control, monitor]
        nightly = await control.create_workflow("yesterday", id="nightly")
        await nightly.start()
        await nightly.create_work_orders([{"id": f"o{n}", "task_type": "nobody"} for n in (1, 2, 3)])
        other = await control.create_workflow("goes on", id="other")
        await other.start()
        page = await monitor.subscribe("nightly", view={"kind": "orders", "before": "o2"})
        assert page.state["ids"] == ["o1"]
        summary = await monitor.subscribe("other", view={"kind": "summary"})
        # Away while nightly ends, is archived, pruned and made anew without an o2 (its page is VALIDATION now), and the other moves on.
        proxy.refusing = True
        proxy.cut()
        await until(lambda: not monitor.connection.connected, "the monitor to see its connection drop")
        await nightly.complete()
        removed: list[str] = []
        while "nightly" not in removed:
            removed += [item["workflowId"] for item in await control.prune_archive(0)]
            await asyncio.sleep(0.01)
        await control.create_workflow("today", id="nightly")
        await other.update_progress("load", 40)
        proxy.refusing = False
        await summary.until(lambda view, _: view["progress"] == 40)
        assert page.doc not in monitor.docs
    finally:
        await asyncio.gather(*(client.close() for client in opened), return_exceptions=True)
        await proxy.close()
        await asyncio.get_running_loop().run_in_executor(None, hub.stop)



async def test_a_client_given_every_node_leaves_one_that_stops_answering_once_a_request_goes_unanswered(own_hub: Hub, hub: Hub) -> None:
    control = await connect_control([own_hub.url, hub.url], TOKENS["admin"], request_timeout=1)
    try:
        assert control.connection.url == own_hub.url
        reconnected = asyncio.Event()
        control.connection.on_reconnect(reconnected.set)
        frozen = own_hub._process
        assert frozen is not None
        os.kill(frozen.pid, signal.SIGSTOP)
        try:
            # Unanswered, with nothing else heard from that node since it was sent: the client moves on (engine.io's ping
            # timeout would take about 45 s).
            with pytest.raises(HubError) as silent:
                await control.list_workflows()
            assert silent.value.code == "TIMEOUT"
            await asyncio.wait_for(reconnected.wait(), 12)
            assert control.connection.url == hub.url
            assert (await control.create_workflow("past a frozen node")).id
        finally:
            os.kill(frozen.pid, signal.SIGCONT)
    finally:
        await control.close()


async def test_an_agent_whose_registration_is_refused_for_good_after_a_reconnect_says_so_in_its_log_and_closes(own_hub: Hub, caplog: pytest.LogCaptureFixture) -> None:
    hub = own_hub
    kind = unique("rebound")
    worker = await agent(hub, kind)
    errors: list[HubError] = []
    worker.on("error", errors.append)
    running, reasons = asyncio.Event(), list[str | None]()

    @worker.task(kind)
    async def wait(task: Task, ctx: TaskContext) -> None:
        running.set()
        await ctx.cancelled.wait()
        reasons.append(ctx.cancel_reason)

    await worker.ready()
    control = await connect_control(hub.url, TOKENS["admin"])
    wf = await control.create_workflow("refused after a reconnect")
    await wf.start()
    await wf.create_work_order(kind, id="held")
    await running.wait()
    await control.close()
    await asyncio.get_running_loop().run_in_executor(None, hub.stop)
    await until(lambda: not worker.connection.connected, "the agent to see the hub go")
    # Back with its token bound to another agent id: the registration after the reconnect is refused (FORBIDDEN).
    hub.tokens_file.write_text(json.dumps([{"token": t, "role": r, "name": f"py-{r}", **({"agentId": "someone-else"} if r == "agent" else {})}
                                           for r, t in TOKENS.items()]))
    with caplog.at_level(logging.ERROR, logger="switchboard"):
        await asyncio.get_running_loop().run_in_executor(None, hub.start)
        # `await agent.wait_closed()` serves until the agent can serve no more: it returns, the connection closed.
        await asyncio.wait_for(worker.wait_closed(), 10)
    assert [error.code for error in errors] == ["FORBIDDEN"]
    assert [r.getMessage() for r in caplog.records if "takes no more work" in r.getMessage()] == [
        f"switchboard: agent {worker.agent_id} takes no more work: this token may only register as agent someone-else"
    ]
    assert worker.connection.closed
    # Its handler is cancelled: its report could never be sent.
    await until(lambda: reasons, "the handler to be cancelled")
    assert reasons == ["the agent takes no more work: this token may only register as agent someone-else"] and worker.active_tasks == 0


async def test_plain_handlers_blocked_in_their_context_while_the_hub_is_away_leave_the_agent_free_to_reconnect(own_hub: Hub) -> None:
    hub = own_hub
    loop = asyncio.get_running_loop()
    # The default executor has cpu_count + 4 threads; two stand for them all, as many as the agent's slots.
    loop.set_default_executor(ThreadPoolExecutor(max_workers=2))
    hub_control = ThreadPoolExecutor(max_workers=1)  # stops and starts the hub off the loop, outside that executor
    control, monitor = await clients(hub)
    kind = unique("blocked")
    # By host name: reconnecting resolves it, in the loop's default executor.
    worker = await agent(hub, kind, max_concurrent_tasks=2, url=hub.url.replace("127.0.0.1", "localhost"))
    hub_gone, running = threading.Event(), list[str]()

    @worker.task(kind)
    def report(task: Task, ctx: Any) -> str:
        running.append(task.work_order_id)
        hub_gone.wait()
        ctx.progress(50)  # blocks until the agent is registered again
        return "reported"

    await worker.ready()
    wf, mirror = await started(control, monitor, "plain handlers blocked across a restart")
    await wf.create_work_orders([{"id": "a", "task_type": kind}, {"id": "b", "task_type": kind}])
    await until(lambda: len(running) == 2, "both handlers to run")
    await loop.run_in_executor(hub_control, hub.stop)
    await until(lambda: not worker.connection.connected, "the agent to see the hub go")
    hub_gone.set()
    # As if the resolved address had outlived aiohttp's DNS cache (10 s): the reconnection resolves the name again.
    worker.connection._sio.eio.http.connector.clear_dns_cache()
    await loop.run_in_executor(hub_control, hub.start)
    state = await mirror.until(lambda s, _: s["workOrderCounts"]["completed"] == 2)
    assert [state["workOrders"][id]["result"] for id in ("a", "b")] == ["reported", "reported"]
