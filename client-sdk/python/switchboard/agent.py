"""The agent client: registers, takes the work the hub pushes, runs handlers, heartbeats and reports."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, overload

from .attempt import Attempt
from .closing import ClosesOnExit
from .connection import MAY_HAVE_LANDED, Connection
from .errors import HubError
from .heartbeat import Heartbeat
from .listeners import Listeners
from .logger import log
from .task import Handler


#: Failures of the transport after which a request is sent again.
RETRYABLE_TRANSPORT = frozenset({"TIMEOUT", "DISCONNECTED", "UNAVAILABLE", "RATE_LIMITED"})
#: What the hub trims from a task type (JavaScript's trim): str.strip() would also take \x1c-\x1f and \x85, and leave \ufeff.
HUB_TRIMS = "\t\n\v\f\r \u00a0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000\ufeff"
#: Refusals of a completion that retrying cannot fix (bad outputs or result): the attempt fails for good.
REFUSED_FOR_GOOD = frozenset({"VALIDATION", "CONFLICT", "NOT_FOUND", "FORBIDDEN"})
#: The handler a decorator is given, handed back with its own type (a user's tests call it as declared).
DeclaredHandler = TypeVar("DeclaredHandler", bound=Handler)


@dataclass(frozen=True)
class TaskReport:
    """What happened to a completion or failure the agent reported: accepted, or refused with the hub's code."""

    workflow_id: str
    work_order_id: str
    attempt_token: str
    outcome: str
    accepted: bool
    code: str | None = None


class AgentClient(ClosesOnExit):
    """An agent: handlers by task type; reconnects and registers again, keeping the work it runs."""

    def __init__(self, connection: Connection, *, agent_id: str, agent_type: str, capabilities: list[str] | None = None,
                 max_concurrent_tasks: int = 1, labels: dict[str, str] | None = None) -> None:
        self.connection = connection
        self.agent_id = agent_id
        self.agent_type = agent_type
        self.capabilities = list(capabilities or [])
        self.max_concurrent_tasks = max_concurrent_tasks
        self.labels = dict(labels or {})
        self._handlers: dict[str, Handler] = {}
        #: The handlers of the latest registration the hub took: what a refused one goes back to.
        self._landed: dict[str, Handler] = {}
        self._running: dict[str, Attempt] = {}
        self._heartbeat = Heartbeat(self._beat)
        self._registered = asyncio.Event()
        #: The latest agent.status request (drain or resume): a decline as draining waits for it, so that the hub has our word first.
        self._status_request: asyncio.Future[Any] | None = None
        self._registration: asyncio.Task[None] | None = None
        #: The hub's refusal of the latest background registration, raised by ready().
        self._refused: HubError | None = None
        self._dirty = False
        self._draining = False
        #: Set by close(finish=True): no new work, for as long as this process keeps its connections.
        self._finishing = False
        #: While finishing: the request for this connection's drain. A decline waits for it: one the hub read before it would be
        #: held against the agent id (declinedBy), and the next process could not take the order.
        self._finish_drain: asyncio.Task[None] | None = None
        #: Set while no task runs (a finishing close() waits for it).
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = asyncio.Event()
        #: The close() the agent started itself when the hub would have it no more; wait_closed() waits for it.
        self._stopping: asyncio.Task[None] | None = None
        self._listeners = Listeners("report", "error", "draining")
        # Bumped by each drain(), resume() and `drain` push: a reply whose request went out before a
        # later word (the hub pushes every change of a connected agent's draining, in order) is stale.
        self._draining_word = 0
        connection.on("assignment", self._on_assignment)
        connection.on("cancel", self._on_cancel)
        connection.on("drain", self._on_drain)
        connection.on_reconnect(self._schedule_register)
        connection.on_disconnect(self._registered.clear)
        # A report whose batch the hub did not read goes again once this agent is registered again.
        connection.before_resend = self._until_registered
        connection.on_gone(self._on_gone)

    @property
    def draining(self) -> bool:
        """Whether this agent takes no new work: set by drain() and resume(), by every registration's reply and by a control client's `drain` push (draining belongs to the agent id on the hub)."""
        return self._draining

    @property
    def active_tasks(self) -> int:
        """The number of tasks running now."""
        return len(self._running)

    @overload
    def on(self, event: Literal["report"], listener: Callable[[TaskReport], None]) -> Callable[[], None]: ...
    @overload
    def on(self, event: Literal["error"], listener: Callable[[HubError], None]) -> Callable[[], None]: ...
    @overload
    def on(self, event: Literal["draining"], listener: Callable[[bool], None]) -> Callable[[], None]: ...

    def on(self, event: str, listener: Callable[[Any], None]) -> Callable[[], None]:
        """`report` (a TaskReport after each completion or failure the hub answered), `error` (a HubError the agent cannot go on after)
        or `draining` (a bool, when the hub's state changed `draining`: a registration's reply or a control client's `drain` push)."""
        return self._listeners.on(event, listener)

    def task(self, task_type: str) -> Callable[[DeclaredHandler], DeclaredHandler]:
        """Decorator: handles a task type (or "*" for any); registers again in the background (`await agent.ready()` waits)."""
        def decorate(handler: DeclaredHandler) -> DeclaredHandler:
            # Kept as the hub keeps it: it trims the name and offers work under the trimmed one.
            self._handlers[task_type.strip(HUB_TRIMS)] = handler
            self._schedule_register()
            return handler
        return decorate

    async def on_task(self, task_type: str, handler: Handler) -> None:
        """Handles a task type and waits until the hub knows it."""
        self.task(task_type)(handler)
        await self.ready()

    async def ready(self) -> None:
        """Waits until the registration of every handler so far has landed; raises the HubError the hub refused it with,
        or DISCONNECTED when the agent was closed first."""
        while self._registration is not None and not self._registration.done():
            # Not shield(): close() cancels the registration, and that is no cancellation of this caller.
            await asyncio.wait((self._registration,))
        if self._refused is not None:
            raise self._refused
        if self._handlers != self._landed:
            raise HubError("DISCONNECTED", "the handlers were not registered: the agent was closed first")

    def _schedule_register(self) -> None:
        self._dirty = True
        if self._registration is None or self._registration.done():
            self._registration = self.connection.spawn(self._register_until_done())

    async def _register_until_done(self) -> None:
        delay = 0.1
        while not self._closed.is_set() and not self.connection.gone:
            self._dirty = False
            try:
                await self.register()
            except HubError as error:
                if error.code not in RETRYABLE_TRANSPORT:
                    self._refused = error
                    if error.code not in MAY_HAVE_LANDED:
                        # Not taken (a task type the hub refuses): kept, it would make every later registration fail too.
                        self._handlers = dict(self._landed)
                    if self._registered.is_set():
                        self._listeners.emit("error", error)  # the registration before this one still holds: work goes on
                    else:
                        self._give_up(error)
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                self._dirty = True
                continue
            if not self._dirty:
                # Renewed now, not at the next beat: after a reconnect, the leases ran on while the agent was away.
                self._accept_quietly()
                return

    async def register(self) -> dict[str, Any]:
        """Joins the pool with the current handlers, then reconciles with the attempts the hub says this agent holds."""
        before = set(self._running)  # accepted while the request is in flight: they belong to this connection
        handlers = dict(self._handlers)
        task_types = [] if not self._handlers else ["*"] if "*" in self._handlers else list(self._handlers)
        word = self._draining_word
        reply: dict[str, Any] = await self.connection.request("agent.register", {
            "agentId": self.agent_id, "agentType": self.agent_type, "capabilities": self.capabilities,
            "taskTypes": task_types, "maxConcurrentTasks": self.max_concurrent_tasks, "labels": self.labels,
        })
        self._registered.set()
        self._refused = None
        self._landed = handlers
        if self._finishing and reply["agent"]["status"] != "draining":
            # A drain for a connection before this one ended with it (the hub cannot tell a new process from us): asked again.
            self._ask_finish_drain()
        elif word == self._draining_word:
            self._adopt_status(reply["agent"]["status"] == "draining")
        held = {attempt["attemptToken"] for attempt in reply["attempts"]}
        for token in before - held:
            self._abort(token, "the hub reassigned this work while we were away")
        for attempt in reply["attempts"]:
            if attempt["state"] == "running" and attempt["attemptToken"] not in self._running:
                # The hub thinks we run this, but this process does not (it restarted): hand it back at once.
                ref = {key: attempt[key] for key in ("workflowId", "workOrderId", "attemptToken")}
                self.connection.spawn(self._report("task.fail", {**ref, "error": "the agent restarted and lost this attempt", "retryable": True}))
        return reply

    async def drain(self, *, timeout: float | None = None) -> None:
        """Takes no new work; running tasks finish."""
        await self._ask_status("draining", timeout=timeout)

    async def resume(self, *, timeout: float | None = None) -> None:
        """Takes new work again after drain(), or after a registration found this agent id draining."""
        await self._ask_status("active", timeout=timeout)

    async def _ask_status(self, status: str, *, until_disconnect: bool = False, timeout: float | None = None) -> None:
        """Acts on `status` at once, then takes the hub's reply, unless a later word came first: a push
        (of a change made after this one in the same commit, sent before this reply) or another call."""
        self._draining_word += 1
        word = self._draining_word
        was = self._draining
        self._draining = status == "draining"
        request = asyncio.ensure_future(self.connection.request("agent.status", {"status": status, "untilDisconnect": True} if until_disconnect else {"status": status}, timeout))
        self._status_request = request
        try:
            reply = await request
        except HubError as error:
            # Refused without taking effect (RATE_LIMITED, say): the hub's state is as it was, so this process's is too;
            # draining here alone would decline every offer as draining, and the hub would hold each against the agent.
            if word == self._draining_word and error.code not in MAY_HAVE_LANDED:
                self._draining = was
            raise
        if word == self._draining_word:
            self._draining = reply["status"] == "draining"

    def _adopt_status(self, draining: bool) -> None:
        """Takes the hub's draining state (a registration's reply, or a control client's change pushed as `drain`); a change is logged and emitted, or the process would sit idle with no sign why."""
        if draining == self._draining:
            return
        self._draining = draining
        if draining:
            log.warning("switchboard: agent %s is draining on the hub (set under this agent id before, or by a control client): "
                        "it takes no new work until resume()", self.agent_id)
        else:
            log.warning("switchboard: agent %s is active on the hub again (set by a control client): it takes new work", self.agent_id)
        self._listeners.emit("draining", draining)

    async def set_note(self, note: str | None, *, timeout: float | None = None) -> None:
        """Sets (or with None clears) a free-text status note."""
        await self.connection.request("agent.status", {"note": note}, timeout)

    def _ask_finish_drain(self) -> asyncio.Task[None]:
        """Asks the hub to drain this agent for the current connection only, again while it is busy or rate-limits (declines
        meanwhile would be held against the agent id); refused for good, or the connection gone (the registration asks again),
        offers are declined all the same."""
        self._finish_drain = self.connection.spawn(self._finish_drain_until_done())
        return self._finish_drain

    async def _finish_drain_until_done(self) -> None:
        delay = 0.1
        while not self._closed.is_set():
            try:
                await self._ask_status("draining", until_disconnect=True)
                return
            except HubError as error:
                if error.code not in RETRYABLE_TRANSPORT or not self.connection.connected:
                    return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def close(self, *, finish: bool = False) -> None:
        """Disconnects; running tasks are cancelled and the hub reassigns them after its grace period. With `finish`, the agent
        first takes no new work and waits until its running tasks have ended and their reports were answered (a plain close()
        meanwhile cancels them): a process on its way out loses no work it started. That drain is this connection's alone."""
        if finish and not self._closed.is_set():
            self._finishing = True
            try:
                if self._registered.is_set():
                    await asyncio.wait((self._ask_finish_drain(),))
                while self._running and not self._closed.is_set():
                    await self._idle.wait()
            except asyncio.CancelledError:
                # Interrupted while finishing (a second Ctrl-C, a wait_for run out): closed now, as a plain close(), not left
                # connected taking no work with its handlers running.
                await self.close()
                raise
        self._closed.set()
        self._heartbeat.stop()
        for token in list(self._running):
            self._abort(token, "the agent is closing")
        await self.connection.close()

    async def wait_closed(self) -> None:
        """Waits until close(), or until the hub would have this agent no more (it closed the connection, or refused the
        registration after a reconnect for good; said in the log and as `error`): `await agent.wait_closed()` serves until then."""
        await self._closed.wait()
        if self._stopping is not None:
            await asyncio.shield(self._stopping)

    async def _on_assignment(self, assignment: dict[str, Any]) -> dict[str, Any] | None:
        # python-socketio sends the return value as the ack (an await before it delays the answer).
        handler = self._handlers.get(assignment["taskType"]) or self._handlers.get("*")
        if handler is None:
            return {"accept": False, "reason": f"no handler for {assignment['taskType']}"}
        if self._closed.is_set():
            # Closing: no answer, as in the TypeScript SDK; the hub withdraws the offer with the connection and holds it against nobody
            # (a decline would join declinedBy). python-socketio acks whatever the handler returns, so it returns once nothing can be sent.
            await self.connection.until_down()
            return None
        if self._draining or self._finishing:
            # Answered once the hub has our word: a decline it reads while it counts us active is held against the agent id (the next
            # process under it too), and the registration's reply may say we are active after all (reactivated while we were away).
            await self._drain_told()
            if self._closed.is_set():
                await self.connection.until_down()
                return None
            if self._draining or self._finishing:
                return {"accept": False, "reason": "draining"}
        self._start(assignment, handler, carried=False)
        return {"accept": True}

    async def _drain_told(self) -> None:
        """Returns once the hub answered this connection's registration and the status request in flight (if any)."""
        with contextlib.suppress(HubError):
            await self._until_registered("offer answer")
        if self._status_request is not None:
            await asyncio.wait({self._status_request})
        if self._finishing and self._finish_drain is not None:
            # The connection's drain, asked again while the hub is busy (a refused try is not the hub's word).
            await asyncio.wait({self._finish_drain})

    def _on_carried_offer(self, assignment: dict[str, Any]) -> None:
        """An offer that came in a report's reply: no ack to send; its first report (or a heartbeat after half of acceptMs) accepts it."""
        handler = self._handlers.get(assignment["taskType"]) or self._handlers.get("*")
        # Not to be run here after all (closing, draining meanwhile): it lapses and the hub offers it to another agent.
        if handler is None or self._draining or self._finishing or self._closed.is_set():
            return
        self._start(assignment, handler, carried=True)

    def _start(self, assignment: dict[str, Any], handler: Handler, *, carried: bool) -> None:
        attempt = Attempt(assignment, self._send, self._heartbeat_one, self.agent_id)
        self._running[attempt.task.attempt_token] = attempt
        self._idle.clear()
        self._heartbeat.cover(attempt.task.lease_ms)
        self.connection.spawn(self._run(attempt, handler, carried))

    async def _on_drain(self, notice: dict[str, Any]) -> None:
        if self._finishing and notice.get("draining") is not True:
            # Finishing, and a control client made the agent active: this process still takes nothing, so it drains again.
            self._ask_finish_drain()
            return
        self._draining_word += 1
        self._adopt_status(notice.get("draining") is True)

    async def _on_cancel(self, notice: dict[str, Any]) -> None:
        self._abort(notice["attemptToken"], f"cancelled by the hub: {notice.get('reason', '')}")

    def _on_gone(self) -> None:
        self._give_up(HubError(
            "DISCONNECTED", "the hub closed this connection (another connection registered this agent id, or the token was revoked)"
        ))

    def _give_up(self, error: HubError) -> None:
        """The agent can take no more work: said in the log (or the process would sit idle with no sign why) and as `error`,
        then closed, so that wait_closed() returns and running handlers are cancelled (their reports could never be sent)."""
        log.error("switchboard: agent %s takes no more work: %s", self.agent_id, error.message)
        self._listeners.emit("error", error)
        for token in list(self._running):
            self._abort(token, f"the agent takes no more work: {error.message}")
        if self._stopping is None and not self._closed.is_set():
            self._closed.set()  # at once: no offer is taken meanwhile
            # Not spawned on the connection: its close() cancels the tasks it spawned, and this one runs that close().
            self._stopping = asyncio.get_running_loop().create_task(self.close())

    async def _run(self, attempt: Attempt, handler: Handler, carried: bool) -> None:
        token = attempt.task.attempt_token
        # A carried offer is accepted as its handler starts: by a report in the handler's first step, else by a
        # heartbeat for its token; should that not get through, another after half of acceptMs.
        loop = asyncio.get_running_loop()
        accept = loop.call_later(attempt.task.accept_ms / 2000, self._accept_quietly) if carried else None
        if carried:
            loop.call_soon(lambda: None if attempt.reported else self._accept_quietly())
        try:
            outcome = await attempt.run(handler)
            if accept is not None:
                accept.cancel()
            if outcome is None:
                return
            event, payload = outcome
            # The report asks for this agent's next offer in its reply, unless no more work is wanted here.
            if not self._draining and not self._finishing and not self._closed.is_set():
                payload["next"] = True
            refused = await self._report(event, payload, attempt.task.attempt)
            # A completion that could not be sent at all (a result JSON cannot hold: a set, an object) fails for good too.
            why = None
            if event == "task.complete" and refused is not None:
                if not isinstance(refused, HubError):
                    why = f"the completion could not be sent: {refused}"
                elif refused.code in REFUSED_FOR_GOOD:
                    why = f"the hub refused the completion: {refused.message}"
            if why is not None:
                ref = {key: payload[key] for key in ("workflowId", "workOrderId", "attemptToken")}
                await self._report("task.fail", {**ref, "error": why[:10_000], "retryable": False}, attempt.task.attempt)
        finally:
            if accept is not None:
                accept.cancel()
            self._running.pop(token, None)
            if not self._running:
                self._idled()

    async def _send(self, event: str, payload: dict[str, Any]) -> Any:
        """A request about an attempt, once this connection is registered (so none reaches the hub before the registration)."""
        await self._until_registered(event)
        return await self.connection.request(event, payload)

    async def _until_registered(self, event: str) -> None:
        """Returns once this connection is registered; raises DISCONNECTED when the agent was closed meanwhile."""
        if event == "agent.register":
            return
        if not self._registered.is_set():
            registered, closed = asyncio.ensure_future(self._registered.wait()), asyncio.ensure_future(self._closed.wait())
            try:
                await asyncio.wait((registered, closed), return_when=asyncio.FIRST_COMPLETED)
            finally:
                registered.cancel()
                closed.cancel()
            if not self._registered.is_set():
                # Closed (or closed by the hub) while waiting: nothing more is sent, and nothing waits for ever.
                raise HubError("DISCONNECTED", f"{event} was not sent: the agent was closed")

    async def _report(self, event: str, payload: dict[str, Any], attempt: int | None = None) -> Exception | None:
        """Sends a completion or failure until the hub answers, across timeouts and reconnects; returns the hub's refusal, if any,
        or the error that kept the report from being sent.

        A repeat refused as STALE_ATTEMPT after a try that may have landed (its answer lost) is that try's success when the
        refusal lists attempt number `attempt` as ended the way reported (else the first try was lost: its lease ran out, say).
        """
        outcome = "completed" if event == "task.complete" else "failed"
        base = {"workflow_id": payload["workflowId"], "work_order_id": payload["workOrderId"], "attempt_token": payload["attemptToken"], "outcome": outcome}
        delay = 0.1
        may_have_taken_effect = False
        while not self._closed.is_set():
            try:
                reply = await self._send(event, payload)
            except HubError as error:
                # A hub that lists no attempts (an older one), or an attempt not known here: taken for landed.
                landed = error.attempts is None or attempt is None or any(
                    run.get("number") == attempt and run.get("outcome") == outcome for run in error.attempts if isinstance(run, dict))
                if error.code == "STALE_ATTEMPT" and may_have_taken_effect and landed:
                    self._listeners.emit("report", TaskReport(**base, accepted=True))
                    return None
                if error.code in RETRYABLE_TRANSPORT:
                    may_have_taken_effect = may_have_taken_effect or error.code in MAY_HAVE_LANDED
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                self._listeners.emit("report", TaskReport(**base, accepted=False, code=error.code))
                return error
            except (TypeError, ValueError) as error:
                # Never sent: the payload is not JSON, so sending it again cannot help.
                self._listeners.emit("report", TaskReport(**base, accepted=False, code="INTERNAL"))
                return error
            self._listeners.emit("report", TaskReport(**base, accepted=True))
            for assignment in (reply or {}).get("next") or []:
                self._on_carried_offer(assignment)
            return None
        return None

    def _accept_quietly(self) -> None:
        self.connection.spawn(self._beat_quietly())

    async def _beat_quietly(self) -> None:
        try:
            await self._beat()
        except HubError:
            pass  # the heartbeat timer tries again; a lapsed offer goes to another agent

    async def _heartbeat_one(self, token: str) -> bool:
        reply = await self._send("agent.heartbeat", {"attemptTokens": [token]})
        for lost in reply["lost"]:
            self._abort(lost, "the lease was lost")
        return token in reply["renewed"]

    async def _beat(self) -> None:
        if not self._running or not self._registered.is_set():
            return
        reply = await self.connection.request("agent.heartbeat", {"attemptTokens": list(self._running)})
        for token in reply["lost"]:
            self._abort(token, "the lease was lost")

    def _abort(self, token: str, reason: str) -> None:
        attempt = self._running.pop(token, None)
        if attempt is not None:
            attempt.abort(reason)
            if not self._running:
                self._idled()

    def _idled(self) -> None:
        """The last running task ended: no heartbeat is due, and a finishing close() goes on."""
        self._heartbeat.stop()
        self._idle.set()


async def connect_agent(url: str | Sequence[str], token: str, *, agent_id: str, agent_type: str = "generic", capabilities: list[str] | None = None,
                        max_concurrent_tasks: int = 1, labels: dict[str, str] | None = None,
                        request_timeout: float = 10.0, connect_timeout: float = 10.0) -> AgentClient:
    """Connects an agent and registers it (with no task types until its first handler)."""
    connection = await Connection.open("agent", url, token, request_timeout=request_timeout, connect_timeout=connect_timeout)
    agent = AgentClient(connection, agent_id=agent_id, agent_type=agent_type, capabilities=capabilities,
                        max_concurrent_tasks=max_concurrent_tasks, labels=labels)
    try:
        await agent.register()
    except BaseException:
        await connection.close()
        raise
    return agent
