"""Which node of a cluster a connection talks to, and how it moves on (the TypeScript SDK's failover.ts)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from .errors import HubError

#: The pause before the next try of a first connection (seconds), doubled at each failed try in a row up to MAX_DELAY.
FIRST_DELAY = 0.1
MAX_DELAY = 2.0
#: How long a try to reach a node of a cluster (a list of URLs) may take before the next node is tried: one that takes the
#: TCP connection and never answers (frozen) would otherwise hold the whole connect_timeout, or aiohttp's 300 s.
NODE_CONNECT_TIMEOUT = 5.0
#: The longest pause between python-socketio's reconnection tries to a cluster: a new leader serves about a lease after the
#: old one died, and clients should find it soon after.
CLUSTER_RETRY_MAX = 0.5


#: The schemes a hub URL may have, and the one it is reached by: ws:// is read as http://, as the CLI and the TypeScript SDK read it.
HTTP_OF = {"http": "http", "https": "https", "ws": "http", "wss": "https"}


def hub_url(url: str) -> str:
    """The hub's base URL, checked: a scheme and a host, no path (the hub serves its clients at the root)."""
    if not isinstance(url, str):
        raise HubError("VALIDATION", f"the hub URL must be a string, not {type(url).__name__}")
    parts = urlsplit(url)
    # "localhost:4700" splits as the scheme "localhost" with the path "4700".
    if "://" not in url:
        raise HubError("VALIDATION", f"the hub URL {url!r} has no http:// or https:// scheme; did you mean http://{url or '127.0.0.1:4700'}?")
    if parts.scheme not in HTTP_OF or not parts.hostname:
        raise HubError("VALIDATION", f"the hub URL {url!r} needs the scheme http or https and a host, e.g. http://127.0.0.1:4700")
    try:
        parts.port
    except ValueError:
        raise HubError("VALIDATION", f"the hub URL {url!r} is not valid: check its port (1-65535)") from None
    if parts.path not in ("", "/"):
        raise HubError("VALIDATION", f"the hub URL {url!r} has a path ({parts.path}); the hub serves its clients at the root")
    return f"{HTTP_OF[parts.scheme]}://{parts.netloc}"


def hub_urls(url: str | Sequence[str]) -> list[str]:
    """The nodes to try, checked, in order and without repeats: one URL, or every node of a cluster."""
    given = [url] if isinstance(url, str) else list(url)
    if not given:
        raise HubError("VALIDATION", "the hub URL list is empty: give one URL, or every node of the cluster")
    urls: list[str] = []
    for one in given:
        checked = hub_url(one)
        if checked not in urls:
            urls.append(checked)
    return urls


def leader_of(refusal: Any) -> dict[str, str] | None:
    """The leader a follower's NOT_LEADER refusal names ({nodeId, url}), or None when it names none (a failover under way)."""
    leader = refusal.get("leader") if isinstance(refusal, dict) else None
    if isinstance(leader, dict) and isinstance(leader.get("nodeId"), str) and isinstance(leader.get("url"), str):
        return {"nodeId": leader["nodeId"], "url": leader["url"]}
    return None


class Failover:
    """After a follower's NOT_LEADER refusal the next attempt goes to the leader it names (or the next node of the list);
    after a node could not be reached, to the next node. With one URL, only a named leader moves it."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        #: The node connected to, or tried next.
        self.url = urls[0]
        #: Where in `urls` the rotation goes on from; following a leader does not move it.
        self._position = 0
        self._delay = FIRST_DELAY

    def follow(self, leader: dict[str, str] | None) -> None:
        """Moves to the leader a follower named (or the next node)."""
        named = None
        if leader is not None:
            try:
                named = hub_url(leader["url"])
            except HubError:
                named = None
        self.url = named if named is not None and named != self.url else self._next()

    def pause(self) -> float:
        """How long to wait before the next try: doubled at each failed try in a row, up to MAX_DELAY."""
        delay, self._delay = self._delay, min(self._delay * 2, MAX_DELAY)
        return delay

    def unreachable(self) -> None:
        """The node tried could not be reached: the next attempt goes to the next one (back to the list from a leader named)."""
        if len(self.urls) > 1 or self.url not in self.urls:
            self.url = self._next()

    def connected(self) -> None:
        """A connection was made: the next refusal waits the shortest pause again."""
        self._delay = FIRST_DELAY

    def _next(self) -> str:
        """The next node after the rotation's place, never the one just tried when there are others."""
        while True:
            self._position = (self._position + 1) % len(self.urls)
            if len(self.urls) == 1 or self.urls[self._position] != self.url:
                return self.urls[self._position]
