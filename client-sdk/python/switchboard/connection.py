"""A socket to one namespace of the hub: requests whose ack envelopes become values or HubErrors."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

import aiohttp
import socketio  # type: ignore[import]  # python-socketio ships no type hints

from .connect_error import not_a_hub, token_refused, unreachable
from .errors import HubError
from .failover import CLUSTER_RETRY_MAX, NODE_CONNECT_TIMEOUT, Failover, hub_urls, leader_of
from .json_fit import check_json_fit
from .logger import log


#: Failures after which a request may or may not have taken effect.
MAY_HAVE_LANDED = frozenset({"DISCONNECTED", "TIMEOUT", "UNAVAILABLE"})
#: Of those, the ones after which a create with the client's own id is sent again at once.
RESEND = frozenset({"DISCONNECTED", "TIMEOUT"})


def checked_timeout(name: str, value: float | None, fallback: float) -> float:
    """`value` if it is a timeout (seconds, 0 or more; math.inf: no limit), else a VALIDATION error naming `name`; `fallback` when None.

    asyncio took a negative or NaN timeout as "at once" without a word: a request failed with TIMEOUT before its answer
    could come, a connection with DISCONNECTED "within -1 s"."""
    if value is None:
        return fallback
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or value < 0:
        raise HubError("VALIDATION", f"{name} must be a number of seconds, 0 or more (math.inf: no limit); got {value!r}")
    return value


#: WebSocket close code 1009: the hub closed the connection at a message over its maxHttpBufferSize.
MESSAGE_TOO_BIG = 1009

#: The event that carries several requests in one message (PROTOCOL.md, "Batches"), and the most it may carry.
BATCH_EVENT = "batch"
MAX_BATCH = 100
#: Control requests that only change state through the hub's one writer: answered with the commit that holds them, as
#: quickly as the others of their turn. Reads (a big workflow is serialised a slice at a time) and requests that touch
#: files (data.register, registerMany, update and validate hash the files they name first) go alone, so that they hold
#: back no other answer.
QUICK_CONTROL = frozenset({
    "workflow.create", "workflow.start", "workflow.complete", "workflow.fail", "workflow.cancel", "workflow.pause",
    "workflow.resume", "workflow.progress", "step.add", "step.start", "step.complete", "step.fail", "objective.add",
    "objective.update", "kpi.add", "kpi.record",
    "workOrder.create", "workOrder.createMany", "workOrder.cancel", "workOrder.retry", "agent.update",
    "lineage.link",
})
#: Which requests of each namespace go with the others of their turn in one message.
BATCHABLE: dict[str, Callable[[str, dict[str, Any]], bool]] = {
    # An agent's are quick writes, in bursts; but the hub hashes the local files a data registration or a completion's
    # outputs name before it answers.
    "agent": lambda event, payload: event != "data.register" and not payload.get("outputs"),
    "control": lambda event, _payload: event in QUICK_CONTROL,
    "monitor": lambda _event, _payload: False,
}
#: What a batched request is told when its batch was not read (too big): send it again, alone, once the connection is back.
_SEND_ALONE = object()


def _json_bytes(payload: Any) -> int:
    """The approximate size of a payload's JSON in bytes; 0 if it has none."""
    try:
        return len(_StrictJson.dumps(payload).encode())
    except (TypeError, ValueError):
        return 0


def too_big_error(event: str, size: int) -> HubError:
    """The error of a request whose message the hub would not read: nothing was done, and sending it again cannot help."""
    return HubError(
        "VALIDATION",
        f"{event} was not read by the hub: its message (about {size} bytes) is larger than the hub's maxHttpBufferSize "
        "(1 MiB by default), so the hub closed the connection without applying it. Send less in one request.",
    )


class _StrictJson:
    """The json module as the hub reads it: NaN and Infinity refused (ValueError) before anything is sent.

    Text is written as itself, sent as UTF-8 as the TypeScript SDK sends it: as \\u escapes, each accented letter took 6 bytes
    instead of 2, so a request well under the hub's maxHttpBufferSize was over it and refused. A lone surrogate, which UTF-8
    cannot hold, keeps json's escapes (so JSON.stringify writes it too)."""

    @staticmethod
    def dumps(value: Any, **options: Any) -> str:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False, **options)
        try:
            text.encode()
        except UnicodeEncodeError:
            return json.dumps(value, allow_nan=False, **options)
        return text

    loads = staticmethod(json.loads)


class _StrictPacket(socketio.packet.Packet):  # type: ignore[misc]  # python-socketio ships no type hints
    """Packets encoded with _StrictJson. Python's json writes a bare NaN, which is not JSON: the hub cannot parse the
    packet and drops the whole connection, so the request (a KPI value, a task's result) came back DISCONNECTED, and
    an agent resent its completion after every reconnect, for ever."""

    json = _StrictJson


def _session_without_message_limit(handshake_timeout: float | None, failed: Callable[[BaseException], None]) -> aiohttp.ClientSession:
    """An HTTP session whose websockets take messages of any size, and whose handshakes end after `handshake_timeout` s.

    aiohttp closes a websocket at a message over 4 MB, its default, and python-engineio 4.3 offers
    no way to set it. The hub's patches and catch-up answers have no such bound (a monitor back
    from a drop gets every change it missed in one answer): above it the connection dropped at
    every try, and the mirror never caught up. The TypeScript SDK takes up to 100 MB (ws's default).
    A handshake given up is a connection error, as python-engineio reports one. Every failure is handed to `failed`:
    python-engineio raises a bare "Connection error" in its place, which says nothing of the cause.
    """
    session = aiohttp.ClientSession()
    connect = session.ws_connect

    async def ws_connect(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("max_msg_size", 0)
        try:
            return await asyncio.wait_for(connect(*args, **kwargs), handshake_timeout)
        except asyncio.TimeoutError:
            timeout = aiohttp.ServerTimeoutError(f"no websocket handshake within {handshake_timeout} s")
            failed(timeout)
            raise timeout from None
        except Exception as error:
            failed(error)
            raise

    setattr(session, "ws_connect", ws_connect)
    return session


class Connection:
    """One namespace of one hub; reconnects on its own and tells its listeners when it did."""

    def __init__(self, namespace: str, url: str | Sequence[str], token: str, request_timeout: float = 10.0) -> None:
        self.namespace = "/" + namespace
        self._failover = Failover(hub_urls(url))
        cluster = len(self._failover.urls) > 1
        #: How long a try may take to reach a node: a cluster's next node is tried after NODE_CONNECT_TIMEOUT; one hub gets the whole connect_timeout.
        self._try_timeout = NODE_CONNECT_TIMEOUT if cluster else math.inf
        self.request_timeout = request_timeout
        self._token = token
        self._sio = socketio.AsyncClient(
            serializer=_StrictPacket,
            reconnection=True, reconnection_delay=0.2, reconnection_delay_max=CLUSTER_RETRY_MAX if cluster else 2, randomization_factor=0.1,
            http_session=self._session(),
        )
        self._up = asyncio.Event()
        #: Set while the namespace is not joined (before the first connection, between reconnects, once closed).
        self._down = asyncio.Event()
        self._down.set()
        #: Set once the connection is closed, by close() or by the hub: it will not come up again.
        self._finished = asyncio.Event()
        self._refused: HubError | None = None
        #: Why the hub refused the last attempt to reconnect (RATE_LIMITED, say), until the next connection.
        self.last_error: HubError | None = None
        self._answered = asyncio.Event()
        #: Why the last websocket handshake failed (aiohttp's error), for the first connection's message.
        self._handshake_error: BaseException | None = None
        #: Requests sent and not answered yet, with their event and payload (to name the one a close for size was at).
        self._pending: dict[asyncio.Future[Any], tuple[str, Any]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._reconnect_listeners: list[Callable[[], None]] = []
        self._disconnect_listeners: list[Callable[[], None]] = []
        self._gone_listeners: list[Callable[[], None]] = []
        self._ever_connected = False
        #: How many times the connection dropped: equal before and after, one connection served both (a transfer is its own).
        self.drops = 0
        self.closed = False
        #: True once the hub closed this connection on purpose: it will not reconnect.
        self.gone = False
        self._sio.on("connect", self._on_connect, namespace=self.namespace)
        self._sio.on("disconnect", self._on_disconnect, namespace=self.namespace)
        self._sio.on("connect_error", self._on_connect_error, namespace=self.namespace)
        # A node that cannot be reached is told on the root namespace.
        self._sio.on("connect_error", self._on_unreachable, namespace="/")
        #: When the node last sent anything (time.monotonic()): a packet, or engine.io's ping.
        self._heard_at = 0.0
        if cluster:
            # Private, for want of a public hook in python-engineio 4.3: every packet received goes through it.
            receive = self._sio.eio._receive_packet

            async def heard(packet: Any) -> None:
                self._heard_at = time.monotonic()
                await receive(packet)

            self._sio.eio._receive_packet = heard
        # What a request costs a connection that is mid-unsure create: keys whose outcome is unknown.
        self._unsure: set[str] = set()
        #: Off once a hub did not understand a batch (it predates them).
        self._batching = True
        #: Which requests may share a message with the others of their turn (see BATCHABLE).
        self._batchable = BATCHABLE[namespace]
        #: Queued requests that go as themselves, in their place in the queue (reads, or with batching off).
        self._lone: set[asyncio.Future[Any]] = set()
        #: Messages _flush handed to a task that has not emitted them yet: a lone request must not go before them.
        self._unsent = 0
        #: Set by an agent: what a request waits for before it goes again alone after its batch was not read (the
        #: connection dropped at it, so the agent must register again before its reports).
        self.before_resend: Callable[[str], Awaitable[None]] | None = None
        #: Requests of this turn waiting to be sent together: event, payload, deadline (loop time), and their answer.
        self._queued: list[tuple[str, dict[str, Any], float, asyncio.Future[Any]]] = []

    def _session(self) -> aiohttp.ClientSession:
        return _session_without_message_limit(None if math.isinf(self._try_timeout) else self._try_timeout, self._handshake_failed)

    def _handshake_failed(self, error: BaseException) -> None:
        self._handshake_error = error

    def _target(self) -> str:
        """The URL python-socketio connects to, asked at every try: the node the failover chose."""
        # python-engineio closes its HTTP session at each disconnect (following NOT_LEADER, say) and would make a default
        # one for the next connection, whose websocket closes at a message over 4 MB.
        eio = self._sio.eio
        if eio.http is None or eio.http.closed:
            eio.http = self._session()
        return self.url

    @property
    def url(self) -> str:
        """The node connected to, or tried next (one of a cluster's, or the leader a follower named)."""
        return self._failover.url

    @property
    def connected(self) -> bool:
        """Whether the namespace is joined now."""
        return self._up.is_set()

    async def until_down(self) -> None:
        """Waits until the connection is down: dropped, closed, or not yet connected (at once then)."""
        await self._down.wait()

    @classmethod
    async def open(cls, namespace: str, url: str | Sequence[str], token: str, *, request_timeout: float = 10.0, connect_timeout: float = 10.0) -> Connection:
        """Connects to `namespace`; raises HubError at a refused token (its code) or when the hub cannot be reached (DISCONNECTED)."""
        connect_timeout = checked_timeout("connect_timeout", connect_timeout, 10.0)
        request_timeout = checked_timeout("request_timeout", request_timeout, 10.0)
        connection = cls(namespace, url, token, request_timeout)
        try:
            await connection._connect(connect_timeout)
        except asyncio.CancelledError:
            # Cancelled half way (a script's Ctrl-C): no socket is left to connect and register behind the caller's back.
            await connection._shut()
            raise
        return connection

    async def _connect(self, timeout: float) -> None:
        """Connects to the first node that takes the namespace: a follower's NOT_LEADER is followed to the leader it names,
        a node that cannot be reached gives way to the next of the list, all within one deadline."""
        loop = asyncio.get_running_loop()
        # One deadline over every try and step: a hub that takes the TCP connection and never answers (frozen) holds the first.
        deadline = loop.time() + timeout
        tried: list[str] = []
        while True:
            url = self.url
            tried.append(url)
            self._refused = None
            self._handshake_error = None
            self._answered.clear()
            try:
                await asyncio.wait_for(
                    self._sio.connect(
                        self._target, auth={"token": self._token}, transports=["websocket"], namespaces=[self.namespace], wait=False
                    ),
                    min(self._try_timeout, max(0.0, deadline - loop.time())),
                )
                await asyncio.wait_for(self._answered.wait(), min(self._try_timeout, max(0.0, deadline - loop.time())))
            except (socketio.exceptions.ConnectionError, asyncio.TimeoutError) as error:
                silent = isinstance(error, asyncio.TimeoutError)
                failure = (HubError("DISCONNECTED", f"no answer from the hub at {url} within {min(timeout, self._try_timeout)} s") if silent
                           else unreachable(url, self._handshake_error, str(error)))
                if self._failover.urls == [url] or loop.time() >= deadline:
                    await self._shut()
                    raise failure from None
                if silent:
                    # A node of a cluster that does not answer (frozen), left half connected: the next one is tried.
                    with contextlib.suppress(Exception):
                        await self._sio.disconnect()
                self._failover.unreachable()
                await self._pause_or_give_up(self._failover.pause(), deadline, timeout, tried, failure)
                continue
            refused = self._refused
            if refused is None:
                return
            if refused.code != "NOT_LEADER":
                await self._shut()
                raise refused
            # The engine stays connected without the namespace: closed here, the next try goes to the leader.
            await self._sio.disconnect()
            self._failover.follow(refused.leader)
            await self._pause_or_give_up(self._failover.pause(), deadline, timeout, tried, refused)

    async def _pause_or_give_up(self, pause: float, deadline: float, timeout: float, tried: list[str], last: HubError) -> None:
        """Waits `pause` before the next try, or raises DISCONNECTED naming the nodes tried when the deadline comes first."""
        if asyncio.get_running_loop().time() + pause >= deadline:
            await self._shut()
            nodes = ", ".join(dict.fromkeys(tried))
            raise HubError("DISCONNECTED", f"no leader reached within {timeout} s (tried {nodes}); the last said: {last.message}") from None
        await asyncio.sleep(pause)

    def on(self, event: str, handler: Callable[..., Any]) -> None:
        """Handles an event the hub pushes on this namespace (the handler's return value is the ack)."""
        self._sio.on(event, handler, namespace=self.namespace)

    def on_reconnect(self, listener: Callable[[], None]) -> None:
        """Calls `listener` after every reconnection (not the first connection)."""
        self._reconnect_listeners.append(listener)

    def on_disconnect(self, listener: Callable[[], None]) -> None:
        """Calls `listener` whenever the connection drops."""
        self._disconnect_listeners.append(listener)

    def on_gone(self, listener: Callable[[], None]) -> None:
        """Calls `listener` when the hub closed the connection on purpose (it will not reconnect)."""
        self._gone_listeners.append(listener)

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Runs a coroutine in the background, keeping it referenced and logging what it raises."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("switchboard: a background task failed", exc_info=task.exception())

    async def _on_connect(self) -> None:
        # No await here: python-socketio waits for this handler before it finishes the connection.
        self.last_error = None
        self._failover.connected()
        self._answered.set()
        self._down.clear()
        self._up.set()
        if self._ever_connected:
            for listener in list(self._reconnect_listeners):
                listener()
        self._ever_connected = True

    async def _on_connect_error(self, data: Any = None) -> None:
        # socket.io's CONNECT_ERROR carries { message, data: { code, message } }.
        detail = data.get("data") if isinstance(data, dict) else None
        if isinstance(detail, dict) and detail.get("code") == "NOT_LEADER":
            error = self._not_leader(detail)
        elif isinstance(detail, dict) and detail.get("code") in ("UNAUTHENTICATED", "FORBIDDEN"):
            error = token_refused(self.url, self.namespace, detail)
        elif isinstance(data, dict) and data.get("message") == "Invalid namespace":
            error = not_a_hub(self.url, self.namespace)
        elif isinstance(detail, dict) and "code" in detail:
            error = HubError.from_wire(detail)
        else:
            error = HubError("DISCONNECTED", f"the hub at {self.url} refused {self.namespace}: {data}")
        if not self._ever_connected:
            self._refused = error
            self._answered.set()
            return
        if error.code == "NOT_LEADER":
            # python-socketio's next reconnection asks self.url: the leader the follower named, or the next node.
            self._failover.follow(error.leader)
        # python-socketio tries again after its delay; said once per kind of refusal, not at every try.
        if self.last_error is None or self.last_error.code != error.code:
            log.warning("switchboard: the hub at %s refused to reconnect %s (%s); trying again", self.url, self.namespace, error)
        self.last_error = error

    def _not_leader(self, refusal: dict[str, Any]) -> HubError:
        """A follower's refusal, naming the leader (or saying it knows none) and what to check."""
        leader = leader_of(refusal)
        serves = f"the hub at {self.url} is a follower in a cluster and serves {self.namespace} only on its leader"
        if leader is not None:
            return HubError("NOT_LEADER", f"{serves}, {leader['nodeId']} at {leader['url']}: check that the leader is running and reachable from here", leader=leader)
        said = refusal.get("message", "")
        return HubError("NOT_LEADER", f"{serves}, and it knows no leader right now (a failover may be under way): wait for the cluster to have one, "
                        f"or list every node's URL in `url`. The hub said: {said}")

    async def _on_unreachable(self, _data: Any = None) -> None:
        # While reconnecting (the first connection moves on by itself): python-socketio's next try asks self.url.
        if self._ever_connected:
            self._failover.unreachable()

    async def _on_disconnect(self) -> None:
        self.drops += 1
        self._up.clear()
        self._down.set()
        error = HubError("DISCONNECTED", f"the connection to the hub at {self.url} dropped before the answer; the request may or may not have taken effect")
        # The biggest request in flight at a close for size is the one the hub refused (it read no further): it fails for what it
        # is, not as DISCONNECTED, which its callers (a create sent again, an agent's report) would retry for ever.
        refused = self._closed_for_size()
        for future, (event, _payload) in list(self._pending.items()):
            if future.done():
                continue
            if refused is not None and future is refused[0]:
                # A batch the hub did not read: its requests go again alone, and one too big fails for what it is.
                if event == BATCH_EVENT:
                    future.set_result(_SEND_ALONE)
                else:
                    future.set_exception(too_big_error(event, refused[1]))
            else:
                future.set_exception(error)
        for listener in list(self._disconnect_listeners):
            listener()
        if not self.closed:
            self.spawn(self._check_gone())

    def _closed_for_size(self) -> tuple[asyncio.Future[Any], int] | None:
        """The request in flight the hub closed the websocket at (code 1009, a message too big) and its size, if that was why it closed."""
        # Private, for want of a public way: python-engineio 4.3 keeps the aiohttp websocket (and its close code) until after
        # the disconnect handlers, and passes them no reason.
        ws = getattr(self._sio.eio, "ws", None)
        if getattr(ws, "close_code", None) != MESSAGE_TOO_BIG:
            return None
        found: tuple[asyncio.Future[Any], int] | None = None
        for future, (_event, payload) in self._pending.items():
            size = _json_bytes(payload)
            if found is None or size > found[1]:
                found = (future, size)
        return found

    async def _check_gone(self) -> None:
        # python-socketio starts its reconnect task right after the disconnect handlers, unless the
        # hub closed the namespace on purpose (a newer connection took the agent id, a revoked token).
        # Private, for want of a public way: 5.7's disconnect handler gets no reason (later releases pass one).
        for _ in range(3):
            await asyncio.sleep(0)
        if not self.closed and getattr(self._sio, "_reconnect_task", None) is None and not self._up.is_set():
            self.gone = True
            self._finished.set()
            for listener in list(self._gone_listeners):
                listener()

    async def request(self, event: str, payload: dict[str, Any], timeout: float | None = None) -> Any:
        """Sends a request and returns the `data` of its ack, or raises the HubError it carries; waits (unsent) while reconnecting."""
        # Refused here, sent nowhere, naming where: as the TypeScript SDK does.
        check_json_fit(event, payload)
        loop = asyncio.get_running_loop()
        wait = checked_timeout("timeout", timeout, self.request_timeout)
        deadline = loop.time() + wait
        resend = False
        while True:
            if resend and self.before_resend is not None:
                await self._ready_to_resend(event, deadline)
            if not self._up.is_set():
                await self._until_up(event, wait, deadline - loop.time())
            envelope = await self._send(event, payload, wait, deadline, resend)
            if envelope is not _SEND_ALONE:
                break
            # Its batch was not read (too big): it goes again, alone.
            resend = True
        if isinstance(envelope, dict) and envelope.get("ok") is True:
            return envelope.get("data")
        if isinstance(envelope, dict) and envelope.get("ok") is False:
            raise HubError.from_wire(envelope.get("error"))
        raise HubError("INTERNAL", f"malformed answer to {event}: {envelope!r}")

    async def _ready_to_resend(self, event: str, deadline: float) -> None:
        """Waits for before_resend up to the request's deadline (then DISCONNECTED: it was not sent again)."""
        assert self.before_resend is not None
        try:
            await asyncio.wait_for(self.before_resend(event), max(0.0, deadline - asyncio.get_running_loop().time()))
        except asyncio.TimeoutError:
            raise HubError("DISCONNECTED", f"{event} was not sent again: the connection to the hub at {self.url} was not ready for it in time") from None

    async def _until_up(self, event: str, wait: float, remaining: float) -> None:
        """Waits up to `remaining` s for the connection; raises DISCONNECTED when it does not come up or will not."""
        up, finished = asyncio.ensure_future(self._up.wait()), asyncio.ensure_future(self._finished.wait())
        try:
            await asyncio.wait((up, finished), timeout=max(0.0, remaining), return_when=asyncio.FIRST_COMPLETED)
        finally:
            up.cancel()
            finished.cancel()
        if self.closed or self.gone:
            raise HubError("DISCONNECTED", f"{event} was not sent: the connection to {self.url} was closed and does not reconnect")
        if not self._up.is_set():
            refused = f" (the last try was refused: {self.last_error})" if self.last_error is not None else ""
            raise HubError("DISCONNECTED", f"{event} was not sent: no connection to the hub at {self.url} for {wait} s; it keeps reconnecting{refused}")

    async def _send(self, event: str, payload: dict[str, Any], wait: float, deadline: float, resend: bool) -> Any:
        """Sends one request (alone, or with the others of this turn) and returns its ack envelope, or _SEND_ALONE."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        lone = not self._batching or not self._batchable(event, payload)
        # A resend goes at once; so does a lone request with nothing queued or flushed-but-unsent ahead of it, else it
        # waits its turn in the queue (emitted now, it would overtake a batch whose task has not run yet).
        if resend or (lone and not self._queued and not self._unsent):
            try:
                await self._emit_alone(event, payload, future)
            except BaseException:
                self._pending.pop(future, None)
                raise
        else:
            if lone:
                self._lone.add(future)
            self._queued.append((event, payload, deadline, future))
            if len(self._queued) == 1:
                loop.call_soon(self._flush)
        sent_at = time.monotonic()
        try:
            return await asyncio.wait_for(future, max(0.001, deadline - loop.time()))
        except asyncio.TimeoutError:
            silent = self.url
            # A request given less than request_timeout says nothing of the node: it must not drop the connection.
            if wait >= self.request_timeout:
                self._abandon(sent_at)
            raise HubError("TIMEOUT", f"{event} got no answer from the hub at {silent} within {wait} s") from None
        finally:
            self._pending.pop(future, None)

    def _abandon(self, since: float) -> None:
        """Leaves the node connected to for the next of a cluster's when it has sent nothing since `since` (a request that
        went unanswered): one that stops answering (frozen, or cut off) may keep its socket open until engine.io's ping
        timeout, about 45 s. A node that answers other requests is only slow with this one: it is kept. One URL: nothing."""
        ws = getattr(self._sio.eio, "ws", None)
        if len(self._failover.urls) < 2 or not self.connected or self._heard_at > since or ws is None:
            return
        self._failover.unreachable()
        # Closed, python-socketio reconnects, asking self.url: the next node.
        self.spawn(ws.close())

    async def _emit_alone(self, event: str, payload: dict[str, Any], future: asyncio.Future[Any]) -> None:
        """Emits one request on its own; its ack answers `future`, and a failure to send it (DISCONNECTED, not JSON) fails it."""
        def on_ack(*args: Any) -> None:
            if not future.done():
                future.set_result(args[0] if args else None)

        self._pending[future] = (event, payload)
        try:
            await self._sio.emit(event, payload, namespace=self.namespace, callback=on_ack)
        except socketio.exceptions.BadNamespaceError:
            self._pending.pop(future, None)
            if not future.done():
                future.set_exception(HubError("DISCONNECTED", f"{event} was not sent: the connection to {self.url} dropped"))
        except (TypeError, ValueError) as error:
            self._pending.pop(future, None)
            if not future.done():
                future.set_exception(error)

    async def _emit_each(self, entries: list[tuple[str, dict[str, Any], float, asyncio.Future[Any]]]) -> None:
        """Sends queued requests again one by one, now and in order, each answering its own caller.

        Told _SEND_ALONE instead, they went out from their callers' continuations, some turns later: after a batch
        flushed meanwhile (the next MAX_BATCH of the same turn, or the requests of the next turn)."""
        try:
            for event, payload, _deadline, future in entries:
                if not future.done():
                    await self._emit_alone(event, payload, future)
        except asyncio.CancelledError:
            # close() cancels the background tasks: those not sent yet fail as every request waiting then does.
            for _event, _payload, _deadline, future in entries:
                if not future.done():
                    future.set_exception(HubError("DISCONNECTED", "the client was closed before the answer"))
            raise

    def _flush(self) -> None:
        """Sends the requests queued in this turn, in order: runs of batchable ones as batches (at most MAX_BATCH a message), a lone one as itself."""
        queued, self._queued = self._queued, []
        run: list[tuple[str, dict[str, Any], float, asyncio.Future[Any]]] = []
        for entry in queued:
            lone = entry[3] in self._lone
            self._lone.discard(entry[3])
            if entry[3].done():
                continue
            if run and (lone or len(run) == MAX_BATCH):
                self._spawn_batch(run)
                run = []
            if lone:
                self._spawn_batch([entry])
            else:
                run.append(entry)
        if run:
            self._spawn_batch(run)

    def _spawn_batch(self, entries: list[tuple[str, dict[str, Any], float, asyncio.Future[Any]]]) -> None:
        """Sends `entries` from a task of their own, counted in _unsent until it emits them."""
        self._unsent += 1
        started = False

        def unsent_done(_task: asyncio.Task[Any]) -> None:
            # Cancelled before its first step (close()): it will emit nothing.
            if not started:
                self._unsent -= 1

        async def send() -> None:
            nonlocal started
            started = True
            self._unsent -= 1
            # No await before its emit: the message is in engine.io's queue before any other task runs.
            await self._send_batch(entries)

        self.spawn(send()).add_done_callback(unsent_done)

    async def _send_batch(self, entries: list[tuple[str, dict[str, Any], float, asyncio.Future[Any]]]) -> None:
        """Emits queued requests in one message and hands each its answer (or its failure, or _SEND_ALONE)."""
        loop = asyncio.get_running_loop()

        def settle(index: int, outcome: Any) -> None:
            future = entries[index][3]
            if future.done():
                return
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

        def each(outcome: Callable[[str], Any]) -> None:
            for index, (event, _payload, _deadline, _future) in enumerate(entries):
                settle(index, outcome(event))

        single = len(entries) == 1
        event, payload = (entries[0][0], entries[0][1]) if single else (BATCH_EVENT, [[e, p] for e, p, _d, _f in entries])
        answered: asyncio.Future[Any] = loop.create_future()

        def on_ack(*args: Any) -> None:
            if not answered.done():
                answered.set_result(args[0] if args else None)

        self._pending[answered] = (event, payload)
        try:
            try:
                await self._sio.emit(event, payload, namespace=self.namespace, callback=on_ack)
            except socketio.exceptions.BadNamespaceError:
                return each(lambda name: HubError("DISCONNECTED", f"{name} was not sent: the connection to {self.url} dropped"))
            except (TypeError, ValueError) as error:
                if single:
                    return settle(0, error)
                # One cannot be encoded (NaN, an object json cannot write): each goes alone, now, and the bad one fails its own caller.
                self._pending.pop(answered, None)
                return await self._emit_each(entries)
            try:
                reply = await asyncio.wait_for(answered, max(0.001, max(entry[2] for entry in entries) - loop.time()))
            except asyncio.TimeoutError:
                return  # each request times out on its own
            except HubError as error:
                return each(lambda _name: error)
        except asyncio.CancelledError:
            # close() cancels the background tasks: its requests fail as every request waiting then does.
            each(lambda _name: HubError("DISCONNECTED", "the client was closed before the answer"))
            raise
        finally:
            self._pending.pop(answered, None)
        if single or reply is _SEND_ALONE:
            return each(lambda _name: reply)
        data = reply.get("data") if isinstance(reply, dict) and reply.get("ok") is True else None
        if not isinstance(data, list) or len(data) != len(entries):
            # A hub from before batches answers "unknown event batch", having run none of them.
            self._batching = False
            return await self._emit_each(entries)
        for index, envelope in enumerate(data):
            settle(index, envelope)

    async def create_once(self, key: str, event: str, payload: dict[str, Any], existing: Callable[[], Awaitable[Any]], timeout: float | None = None) -> Any:
        """A create carrying the client's own id, sent again after DISCONNECTED or TIMEOUT; a later CONFLICT for it is its success."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 3 * checked_timeout("timeout", timeout, self.request_timeout)
        while True:
            try:
                reply = await self.request(event, payload, timeout)
                self._unsure.discard(key)
                return reply
            except HubError as error:
                if error.code == "CONFLICT" and key in self._unsure:
                    self._unsure.discard(key)
                    try:
                        return await existing()
                    except HubError:
                        raise error from None
                if error.code in MAY_HAVE_LANDED:
                    self._unsure.add(key)
                # Closed, nothing comes back to take the create: sent again, it would fail at once, in a loop.
                if error.code not in RESEND or loop.time() >= deadline or self.closed or self.gone:
                    raise

    async def _shut(self) -> None:
        # Private attributes, for want of a public way in python-socketio 5.7: disconnect() does not
        # stop a reconnect loop under way (a later release's shutdown() does), so it is aborted as the library's
        # own SIGINT handler aborts it.
        self._sio.reconnection = False
        abort = getattr(self._sio, "_reconnect_abort", None)
        if abort is not None:
            abort.set()
        reconnecting = getattr(self._sio, "_reconnect_task", None)
        if reconnecting is not None:
            reconnecting.cancel()
        eio = self._sio.eio
        loops = [task for task in (getattr(eio, "read_loop_task", None), getattr(eio, "write_loop_task", None)) if task is not None]
        try:
            await self._sio.disconnect()
        except Exception:  # noqa: BLE001 - closing a broken socket must not fail the caller
            pass
        # python-socketio disconnects without waiting for engine.io's loops: wait, so none is cut off at exit.
        if loops:
            await asyncio.wait(loops, timeout=2)
        http = getattr(eio, "http", None)
        if http is not None and not http.closed:
            await http.close()

    async def close(self) -> None:
        """Disconnects and stops reconnecting; requests still waiting fail with DISCONNECTED."""
        if self.closed:
            return
        self.closed = True
        self._finished.set()
        await self._shut()
        self._up.clear()
        self._down.set()
        for future in self._pending:
            if not future.done():
                future.set_exception(HubError("DISCONNECTED", "the client was closed before the answer"))
        for task in list(self._tasks):
            task.cancel()
