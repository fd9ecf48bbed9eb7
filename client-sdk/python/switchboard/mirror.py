"""A live copy of one document, exact at `version`, kept by applying the hub's patches in order."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .connection import checked_timeout
from .listeners import Listeners
from .patch import apply_patch


@dataclass(frozen=True)
class MirrorChange:
    """One change of a mirror: from version `from_version` to `to_version`, by `ops` (empty after a snapshot)."""

    doc: str
    from_version: int
    to_version: int
    ops: list[dict[str, Any]] = field(default_factory=list)
    snapshot: bool = False


class Mirror:
    """`state` always equals the hub's document at `version`; a patch that does not follow on is held until the gap is filled."""

    def __init__(self, doc: str) -> None:
        self.doc = doc
        self.state: Any = None
        self.version = 0
        #: The run of the hub `version` was answered in: it resumes with that, never another mirror's, since a
        #: version may have shown a change that a later epoch rolled back and gave to another.
        self.epoch: str | None = None
        self._listeners = Listeners("change")
        #: Patches that arrived ahead of `version`, by their `from`.
        self._ahead: dict[int, dict[str, Any]] = {}

    def __repr__(self) -> str:
        return f"Mirror({self.doc!r}, version={self.version})"

    def on_change(self, listener: Callable[[MirrorChange], None]) -> Callable[[], None]:
        """Calls `listener` after every change; returns a function that stops it."""
        return self._listeners.on("change", listener)

    @property
    def has_gap(self) -> bool:
        """Whether patches are held that do not follow on from `version`."""
        return bool(self._ahead)

    def snapshot(self) -> Any:
        """A deep copy of the state, safe to keep while the mirror moves on."""
        return copy.deepcopy(self.state)

    def _holds(self, predicate: Callable[[Any, int], bool]) -> bool:
        try:
            return self.state is not None and bool(predicate(self.state, self.version))
        except (KeyError, IndexError, TypeError):
            return False  # what the predicate looks at is not there yet

    async def until(self, predicate: Callable[[Any, int], bool], timeout: float = 30.0) -> Any:
        """Returns the state once `predicate(state, version)` holds, checked now and after every change (no polling); a missing key counts as not yet, another error is raised."""
        # Checked first: asyncio took a NaN timeout as none (waiting for ever) and a negative one as "timed out" at once.
        wait = None if timeout is None else checked_timeout("timeout", timeout, 30.0)
        if self._holds(predicate):
            return self.state
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def check(_: MirrorChange) -> None:
            if done.done():
                return
            try:
                holds = self._holds(predicate)
            except Exception as error:  # noqa: BLE001 - raised by until(), as when it checks at once, not lost in a listener
                done.set_exception(error)
                return
            if holds:
                done.set_result(self.state)

        off = self.on_change(check)
        try:
            return await asyncio.wait_for(done, wait)
        except asyncio.TimeoutError:
            raise TimeoutError(f"the condition did not hold within {timeout} s (mirror of {self.doc} at version {self.version})") from None
        finally:
            off()

    def load(self, subscription: dict[str, Any]) -> bool:
        """Applies a subscription answer (a snapshot, or the patches missed), taking its epoch; False when they do not follow on."""
        if subscription["mode"] == "snapshot":
            before = self.version
            self.state = subscription["state"]
            self.version = subscription["version"]
            self.epoch = subscription["epoch"]
            self._ahead = {k: m for k, m in self._ahead.items() if k >= self.version}
            self._listeners.emit("change", MirrorChange(self.doc, before, self.version, [], True))
            self._drain()
            return True
        applied = self.apply({"doc": self.doc, "from": subscription["from"], "to": subscription["to"], "ops": subscription["ops"]})
        if applied:
            self.epoch = subscription["epoch"]
        return applied

    def apply(self, message: dict[str, Any]) -> bool:
        """Applies a patch message (and those held that follow it); False when it does not follow on (one ahead is held)."""
        if message["to"] <= self.version:
            return True
        if message["from"] != self.version:
            if message["from"] > self.version:
                self._ahead[message["from"]] = message
            return False
        self._apply(message)
        self._drain()
        return True

    def _apply(self, message: dict[str, Any]) -> None:
        self.state = apply_patch(self.state, message["ops"])
        before, self.version = self.version, message["to"]
        self._listeners.emit("change", MirrorChange(self.doc, before, self.version, message["ops"], False))

    def _drain(self) -> None:
        while self.version in self._ahead:
            self._apply(self._ahead.pop(self.version))
        self._ahead = {k: m for k, m in self._ahead.items() if k > self.version}
