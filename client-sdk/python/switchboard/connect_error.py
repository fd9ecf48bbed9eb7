"""Why a first connection failed and what to do about it, in the words the TypeScript SDK uses (client-sdk/connect-error.ts)."""

from __future__ import annotations

import errno
import ipaddress
import socket
import ssl
import urllib.parse
from typing import Any

import aiohttp

from .errors import HubError

#: Where tokens come from, for anyone whose token was refused.
WHERE_TOKENS_COME_FROM = (
    "Tokens come from the hub: it prints them when it starts, `npx switchboard tokens list` lists them, "
    "and they are stored in <dataDir>/tokens.json (./.switchboard/tokens.json by default)."
)

#: Which role each namespace needs, for a token of the wrong role.
ROLE_NEEDED = {
    "/control": "connect_control takes an admin token",
    "/agent": "connect_agent takes an agent token",
    "/monitor": "connect_monitor takes a monitor or admin token",
}

_START_IT = "Is the hub running? Start it with `npx switchboard start`."
_USE_HTTP = ("The TLS handshake failed: a hub started with `npx switchboard start` speaks plain http, so use http:// unless a TLS "
             "proxy stands in front of it.")

#: What python-engineio says when a server took the connection but did not answer as engine.io does.
_NOT_ENGINE_IO = ("no OPEN packet", "OPEN packet not returned by server", "Unexpected response from server", "Unexpected recv exception")


def token_refused(url: str, namespace: str, refusal: dict[str, Any]) -> HubError:
    """The hub's refusal of the token (UNAUTHENTICATED, FORBIDDEN), with where tokens come from and, for FORBIDDEN, the role needed."""
    error = HubError.from_wire(refusal)
    said = error.message
    if error.code == "FORBIDDEN":
        said = f"{said} ({ROLE_NEEDED.get(namespace, namespace)})"
    return HubError(error.code, f"the hub at {url} refused the token: {said}. {WHERE_TOKENS_COME_FROM}")


def not_a_hub(url: str, namespace: str) -> HubError:
    """A socket.io server without the namespace: something else listens at the URL."""
    return HubError("DISCONNECTED", f"the server at {url} speaks socket.io but has no {namespace} namespace: it is not a Switchboard hub; "
                                    "check the URL and port")


def unreachable(url: str, cause: BaseException | None, said: str) -> HubError:
    """A network failure: the URL, its cause (aiohttp's error under python-engineio's bare "Connection error", else what
    python-engineio `said`), and the fix."""
    what, advice = _describe(url, cause, said)
    return HubError("DISCONNECTED", f"cannot reach the hub at {url} ({what}). {advice}")


def _describe(url: str, cause: BaseException | None, said: str) -> tuple[str, str]:
    """What went wrong, and what to do, by the kind of error."""
    if isinstance(cause, aiohttp.WSServerHandshakeError) and cause.status in (502, 503, 504):
        # A gateway's own answer: the proxy is there, the hub behind it is not (down, restarting).
        return (f"the websocket handshake was answered with HTTP {cause.status}",
                f"A proxy at {url} answered for the hub, which it could not reach: is the hub behind it running?")
    host = urllib.parse.urlsplit(url).hostname or url
    if isinstance(cause, aiohttp.WSServerHandshakeError) and cause.status == 400 and not _always_answered(host):
        # What a hub answers a handshake whose Host it does not serve (the name in the URL).
        return ("the websocket handshake was answered with HTTP 400",
                "A Switchboard hub refuses the handshake of a host name not among its allowedHosts (its log then says "
                f"\"request refused: its Host is not among allowedHosts\"): connect by IP address or localhost, or start the hub "
                f"with --allowed-hosts {host}. Otherwise the server at {url} is not a Switchboard hub: check the URL and port.")
    if isinstance(cause, aiohttp.WSServerHandshakeError):
        # A web server answered the websocket handshake with an HTTP status: no socket.io there.
        return (f"the websocket handshake was answered with HTTP {cause.status}",
                f"The server at {url} is not a Switchboard hub (or not this version of one): check the URL and port.")
    if isinstance(cause, (aiohttp.ClientSSLError, ssl.SSLError)):
        return f"TLS error: {_os_error(cause)}", _USE_HTTP
    if isinstance(cause, aiohttp.ClientConnectorError):
        error = cause.os_error
        if isinstance(error, socket.gaierror):
            return f"host not found: {error.strerror or error}", f"The host name of {url} does not resolve: check the URL."
        if isinstance(error, ConnectionRefusedError):
            return f"ECONNREFUSED: {error.strerror or error}", _START_IT
        if isinstance(error, TimeoutError) or error.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ETIMEDOUT):
            return str(error), "Check the host, port and firewall."
        return str(error), _START_IT
    if isinstance(cause, aiohttp.ServerTimeoutError):
        return str(cause), "Check the host, port and firewall."
    if said.startswith(_NOT_ENGINE_IO):
        return said, f"The server at {url} is not a Switchboard hub (or not this version of one): check the URL and port."
    return (f"{said}: {cause}" if cause is not None else said), _START_IT


def _always_answered(host: str) -> bool:
    """Whether a hub answers to this host name whatever its allowedHosts: an IP address, localhost."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return host == "localhost" or host.endswith(".localhost")


def _os_error(error: BaseException) -> str:
    """The system's words for an error aiohttp wraps (its own str() names the whole connection key)."""
    return str(getattr(error, "os_error", None) or error)
