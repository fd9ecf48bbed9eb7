"""The monitor client: follows documents live as mirrors, and asks for summaries and reports."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Literal, overload

from .closing import ClosesOnExit
from .connection import Connection
from .errors import HubError
from .listeners import Listeners
from .logger import log
from .mirror import Mirror, MirrorChange
from .transfers import inline_or_transfer, read_whole, with_body
from .views import is_view_name, view_name


def _resume_of(mirror: Mirror | None) -> dict[str, Any]:
    """What a mirror resumes from: its version with the epoch that version came in, or nothing (a snapshot)."""
    if mirror is None or mirror.epoch is None or mirror.version < 0:
        return {}
    return {"version": mirror.version, "epoch": mirror.epoch}


class MonitorClient(ClosesOnExit):
    """Mirrors documents (a workflow, `@agents`, a view); resumes each from the version it holds after a resync or reconnect."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._mirrors: dict[str, Mirror] = {}
        self._views: dict[str, tuple[str, dict[str, Any]]] = {}
        self._follow_all = False
        #: Documents unsubscribed from while following everything: their patches and catch-ups are left out until subscribed to again.
        self._left_out: set[str] = set()
        #: The epoch of the latest answer: subscribeAll takes one, and sends the versions held in it (the others get snapshots).
        self._latest_epoch: str | None = None
        #: The epoch subscribeAll last answered in: that of a document that arrives by patch.
        self._follow_all_epoch: str | None = None
        #: Patches held while a document or view ("*": every document) is being subscribed to or caught up, replayed after.
        self._holding: dict[str, list[dict[str, Any]]] = {}
        #: Per name held, a future done when the hold ends: what asks to catch up meanwhile waits for it.
        self._running: dict[str, asyncio.Future[None]] = {}
        #: Per name ("*": every document) asked to catch up while already held, the one catch-up run after the hold ends, which
        #: every asker awaits: what asked (a rollback notice, a reconnect, subscribe_all) may have come after the hub was read.
        self._again: dict[str, asyncio.Task[None]] = {}
        #: Per subscription not answered yet, the names unsubscribed from meanwhile: such an answer is not kept.
        self._unanswered: list[set[str]] = []
        self._listeners = Listeners("change", "doc")
        connection.on("patch", self._on_patch)
        connection.on("resync", self._on_resync)
        connection.on_reconnect(self._on_reconnect)

    @property
    def docs(self) -> dict[str, Mirror]:
        """Every mirror this monitor holds, by document name: a copy taken when read (subscribe_all() returns a live view)."""
        return dict(self._mirrors)

    @overload
    def on(self, event: Literal["change"], listener: Callable[[MirrorChange], None]) -> Callable[[], None]: ...
    @overload
    def on(self, event: Literal["doc"], listener: Callable[[Mirror], None]) -> Callable[[], None]: ...

    def on(self, event: str, listener: Callable[[Any], None]) -> Callable[[], None]:
        """`change` (a MirrorChange of any mirror) or `doc` (a new Mirror appeared); returns a function that stops it."""
        return self._listeners.on(event, listener)

    async def subscribe(self, doc: str, *, view: dict[str, Any] | None = None, timeout: float | None = None) -> Mirror:
        """Follows one workflow (or `@agents`), or with `view` ({"kind": "summary"} or {"kind": "orders", …}) a view of it."""
        if view is not None:
            view = dict(view)  # the caller may reuse its dict (for the next page): the mirror keeps the spec it followed
        # Held by the name the hub will give it (a view's as the hub names it), so a notice for it meanwhile waits for the answer.
        name = doc if view is None else view_name(doc, view)
        if view is None:
            self._left_out.discard(doc)
        holding = name not in self._holding
        if holding:
            self._hold(name)
        unsubscribed: set[str] = set()
        self._unanswered.append(unsubscribed)
        try:
            payload: dict[str, Any] = {"doc": doc} if view is None else {"doc": doc, "view": view}
            subscription = await self._complete(await self.connection.request("subscribe", payload, timeout), timeout)
            self._latest_epoch = subscription["epoch"]
            if subscription["doc"] in unsubscribed:
                # Unsubscribed from meanwhile: its value now, in a mirror that is not kept (nor followed again at a reconnect).
                detached = Mirror(subscription["doc"])
                detached.load(subscription)
                return detached
            if view is not None:
                self._views[subscription["doc"]] = (doc, view)
            mirror = self._mirror(subscription["doc"])
            mirror.load(subscription)
            return mirror
        finally:
            self._unanswered.remove(unsubscribed)
            if holding:
                self._replay(name)

    async def subscribe_all(self) -> Mapping[str, Mirror]:
        """Follows every document the token may see, including workflows created later; returns the mirrors by document
        name, a read-only live view (it gains the workflows created later). Called during another catch-up, waits for it and
        for a catch-up after it."""
        self._follow_all = True
        self._left_out.clear()
        await self._resync(None)
        return MappingProxyType(self._mirrors)

    async def unsubscribe(self, doc: str, *, timeout: float | None = None) -> None:
        """Stops following a document, or a view by its name (its mirror's `doc`)."""
        # Following everything, patches already on their way (or all of them, from an older hub) must not bring its mirror back.
        if self._follow_all and not is_view_name(doc):
            self._left_out.add(doc)
        self._mirrors.pop(doc, None)
        self._views.pop(doc, None)
        for unsubscribed in self._unanswered:
            unsubscribed.add(doc)
        await self.connection.request("unsubscribe", {"doc": doc}, timeout)

    async def summary(self, workflow_id: str, *, timeout: float | None = None) -> dict[str, Any]:
        """A workflow summary (get_workflow_summary)."""
        return await self.connection.request("summary", {"workflowId": workflow_id}, timeout)  # type: ignore[no-any-return]

    async def report(self, workflow_id: str, fmt: str = "markdown", *, timeout: float | None = None) -> dict[str, Any]:
        """A report of a workflow (json, markdown or html) with its version and content hash."""
        return await read_whole(lambda: self.connection.request("report", {"workflowId": workflow_id, "format": fmt}, timeout),
                                lambda reply: with_body(self.connection, reply, timeout))

    async def close(self) -> None:
        """Disconnects."""
        await self.connection.close()

    def _on_reconnect(self) -> None:
        self.connection.spawn(self._resync_until_done())

    def _mirror(self, doc: str) -> Mirror:
        mirror = self._mirrors.get(doc)
        if mirror is None:
            mirror = Mirror(doc)
            mirror.on_change(lambda change: self._listeners.emit("change", change))
            self._mirrors[doc] = mirror
            self._listeners.emit("doc", mirror)
        return mirror

    async def _on_patch(self, message: dict[str, Any]) -> None:
        self._take(message)

    def _take(self, message: dict[str, Any]) -> None:
        doc = message["doc"]
        held = self._holding.get(doc)
        if held is None:
            held = self._holding.get("*")
        if held is not None:
            held.append(message)
            return
        mirror = self._mirrors.get(doc)
        if mirror is None:
            # Following everything brings new documents (from version 0), never views one did not subscribe to.
            if not self._follow_all or is_view_name(doc) or doc in self._left_out:
                return
            if message["from"] != 0:
                self.connection.spawn(self._resync_or_retry(doc))
                return
            mirror = self._mirror(doc)
            mirror.epoch = self._follow_all_epoch
        try:
            applied = mirror.apply(message)
        except (KeyError, IndexError, TypeError, ValueError):
            log.warning("switchboard: a patch of %s did not apply; taking a fresh snapshot", doc)
            mirror.version = -1  # no resume from a state that is not the hub's
            self.connection.spawn(self._resync_or_retry(doc))
            return
        if not applied:
            self.connection.spawn(self._fill_gap(doc, message["from"] < mirror.version))

    async def _fill_gap(self, doc: str, overlap: bool) -> None:
        # Handlers may run concurrently: the message that fills the gap may be a step behind. Give it a
        # few turns of the loop, then ask the hub for what is missing.
        if not overlap:
            for _ in range(3):
                await asyncio.sleep(0)
            mirror = self._mirrors.get(doc)
            if mirror is None or not mirror.has_gap:
                return
        await self._resync_or_retry(doc)

    async def _on_resync(self, notice: dict[str, Any]) -> None:
        doc = notice.get("doc", "*")
        # Following everything, every deleted workflow is told: one neither held nor being subscribed to would cost a subscribe
        # answered NOT_FOUND, per workflow a prune deleted. (A workflow made anew with its id comes as any new one, by patch.)
        if notice.get("deleted") is True and doc not in self._mirrors and doc not in self._running and "*" not in self._running:
            return
        self.connection.spawn(self._resync_or_retry(None if doc == "*" else doc))

    async def _resync_or_retry(self, doc: str | None) -> None:
        """Catches up, and when that fails (the hub busy, the connection dropping) goes on trying with everything."""
        try:
            await self._resync(doc)
        except HubError:
            await self._resync_until_done()

    async def _resync_until_done(self) -> None:
        delay = 0.1
        while self.connection.connected and not self.connection.closed:
            try:
                await self._resync(None)
                return
            except HubError:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _resync(self, doc: str | None) -> None:
        """Catches up one document (or all): the patches missed when the hub still has them, a snapshot otherwise."""
        key = doc if doc is not None else "*"
        followed = doc in self._views if doc is not None and is_view_name(doc) else doc in self._mirrors or (self._follow_all and doc not in self._left_out)
        running = self._running.get(key)
        if doc is not None and not followed and running is None:
            return  # not followed (a notice that crossed an unsubscribe, a subscription that failed), nor being subscribed to
        if running is not None:
            # Already being subscribed to or caught up (what arrives meanwhile is held and replayed): once more after it.
            again = self._again.get(key)
            if again is None:
                again = self._again[key] = asyncio.get_running_loop().create_task(self._once_more(running, key, doc))
            # Shielded: one asker cancelled does not cancel it for the others (each is told how it ended).
            await asyncio.shield(again)
            return
        self._hold(key)
        try:
            if doc is None:
                await self._catch_up_all()
            else:
                await self._catch_up_or_forget(doc, self._mirrors.get(doc))
        finally:
            self._replay(key)

    async def _catch_up_all(self) -> None:
        """Catches up every mirror held and, following everything, every document the hub has (one subscribeAll)."""
        # Each mirror resumes from its own version and epoch: a catch-up that failed half way left some in a newer epoch.
        held: dict[str, Mirror | None] = dict(self._mirrors)
        names = [name for name in held if name in self._views] if self._follow_all else list(held)
        # One that fails does not keep the others from catching up; the first failure is raised (and all tried again) after.
        failed: HubError | None = None
        if self._follow_all:
            epoch = self._latest_epoch
            resumes = {name: _resume_of(mirror) for name, mirror in held.items() if name not in self._views}
            docs = {name: r["version"] for name, r in resumes.items() if r and r["epoch"] == epoch}
            # Left out before the request: one left out meanwhile may be a workflow created since the answer was built.
            left_before = set(self._left_out)
            reply = await self.connection.request("subscribeAll", {"versions": docs} if epoch is None else {"versions": docs, "epoch": epoch})
            answered_on = self.connection.drops
            if reply["docs"]:
                self._follow_all_epoch = reply["docs"][0]["epoch"]
            # One the answer lacks left memory (archived, deleted) and sends none: forgotten, as the hub forgets it.
            self._left_out -= left_before - {subscription["doc"] for subscription in reply["docs"]}
            # subscribeAll follows everything again on the hub: what was unsubscribed from is said again, or its patches would come.
            await asyncio.gather(*(self.connection.request("unsubscribe", {"doc": doc}) for doc in self._left_out), return_exceptions=True)
            alone = []
            for subscription in reply["docs"]:
                if subscription["doc"] in self._left_out:
                    continue
                # A transfer is read on the connection it was offered to alone: after a drop each read would wait for the next
                # connection, be NOT_FOUND there and its document asked for alone, one by one. Everything is asked for again at once.
                transfer = subscription.get("mode") == "snapshot" and subscription.get("transfer") is not None
                if transfer and self.connection.drops != answered_on:
                    return await self._catch_up_all()
                try:
                    await self._catch_up(subscription, self._mirrors.get(subscription["doc"]))
                except HubError as error:
                    if transfer and self.connection.drops != answered_on:
                        return await self._catch_up_all()  # the read itself met the drop (DISCONNECTED)
                    # Its snapshot's transfer went before we read it (a connection holds 64, the hub 1 GB, each a
                    # minute): asking for everything again would lose the same ones, so each is asked for alone.
                    if error.code == "NOT_FOUND":
                        alone.append(subscription["doc"])
                    else:
                        failed = failed or error
            for name in alone:
                held[name] = self._mirrors.get(name)
            # Held but not in the answer (archived meanwhile, or gone): each is asked for alone.
            answered = {subscription["doc"] for subscription in reply["docs"]}
            names = alone + names + [name for name in held if name not in self._views and name not in answered]
        for name in names:
            try:
                await self._catch_up_or_forget(name, held[name])
            except HubError as error:
                failed = failed or error
        if failed is not None:
            raise failed

    async def _once_more(self, running: asyncio.Future[None], key: str, doc: str | None) -> None:
        await running
        del self._again[key]
        await self._resync(doc)

    def _hold(self, key: str) -> None:
        """Holds the patches of `key` ("*": of everything) until `_replay`."""
        self._holding[key] = []
        self._running[key] = asyncio.get_running_loop().create_future()

    def _replay(self, key: str) -> None:
        """Ends the hold on `key`: replays what arrived meanwhile; a catch-up asked for meanwhile then runs."""
        self._running.pop(key).set_result(None)
        for message in self._holding.pop(key, []):
            self._take(message)

    async def _subscribe_to(self, name: str, resume: dict[str, Any]) -> dict[str, Any]:
        followed = self._views.get(name)
        payload = {"doc": followed[0], "view": followed[1], **resume} if followed else {"doc": name, **resume}
        return await self.connection.request("subscribe", payload)  # type: ignore[no-any-return]

    async def _catch_up_or_forget(self, name: str, held: Mirror | None) -> None:
        """Catches up one name from the mirror `held` (none: a snapshot); a document the hub no longer has (pruned, or its
        creation rolled back) or that the token may no longer see (a reload narrowed its scope) is no longer mirrored, or
        every later catch-up would fail on it, and the mirrors after it would never be caught up. One unsubscribed from meanwhile is not asked for again, and an answer that crossed it is dropped."""
        if held is not None and self._mirrors.get(name) is not held:
            return
        try:
            answer = await self._subscribe_to(name, _resume_of(held))
        except HubError as error:
            # So would a view the hub no longer takes (its page's `before` names an order its workflow, made anew, lacks).
            if error.code not in ("NOT_FOUND", "FORBIDDEN") and not (error.code == "VALIDATION" and name in self._views):
                raise
            if held is not None and self._mirrors.get(name) is not held:
                return
            self._mirrors.pop(name, None)
            self._views.pop(name, None)
            return
        # Outside the try: a transfer that is gone (NOT_FOUND too) says nothing of the document; the catch-up is tried again.
        await self._catch_up(answer, held)

    async def _catch_up(self, answer: dict[str, Any], held: Mirror | None = None) -> None:
        """Loads a catch-up's answer into its mirror: `held`'s, unless it was unsubscribed from meanwhile (then nothing)."""
        subscription = await self._complete(answer)
        self._latest_epoch = subscription["epoch"]
        if held is not None and self._mirrors.get(subscription["doc"]) is not held:
            return
        if held is None and subscription["doc"] in self._left_out:
            return  # unsubscribed from while its snapshot was read (a transfer): no mirror the hub no longer patches
        mirror = self._mirror(subscription["doc"])
        # Patches that do not start at our version cannot be applied: start again from a snapshot.
        if not mirror.load(subscription):
            mirror.load(await self._complete(await self._subscribe_to(subscription["doc"], {})))

    async def _complete(self, subscription: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """A subscription with its snapshot in place, read from its transfer when it came as one."""
        if subscription.get("mode") == "snapshot" and subscription.get("transfer") is not None:
            transfer = subscription.pop("transfer")
            subscription["state"] = await inline_or_transfer(self.connection, None, transfer, timeout)
        return subscription


async def connect_monitor(url: str | Sequence[str], token: str, *, request_timeout: float = 10.0, connect_timeout: float = 10.0) -> MonitorClient:
    """Connects a monitor (a monitor or admin token)."""
    return MonitorClient(await Connection.open("monitor", url, token, request_timeout=request_timeout, connect_timeout=connect_timeout))
