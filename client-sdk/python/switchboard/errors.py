"""The errors the SDK raises: HubError with the contract's codes, and NonRetryableError for handlers."""

from __future__ import annotations

from typing import Any

#: The closed list of error codes a request can fail with (shared/errors.ts), and what each means.
ERROR_CODES: dict[str, str] = {
    "VALIDATION": "The payload does not match the event schema; `issues` says where.",
    "NOT_FOUND": "The workflow, work order or other entity named in the request does not exist.",
    "INVALID_TRANSITION": "The entity is in a state that does not allow this change.",
    "STALE_ATTEMPT": "The attempt token is not the current attempt of the work order (lease lost or reassigned).",
    "FORBIDDEN": "The token is valid but its role or scope does not allow this request.",
    "UNAUTHENTICATED": "No token, or an unknown one.",
    "CONFLICT": "The entity already exists, or the request contradicts the current state (e.g. a dependency cycle).",
    "RATE_LIMITED": "Too many requests on this connection, or too many unknown tokens from this address; retry after a pause.",
    "UNAVAILABLE": "The hub cannot accept changes right now (storage failure or shutting down). Nothing was changed.",
    "TIMEOUT": "The request or the peer did not answer in time.",
    "DISCONNECTED": "The client has no connection to the hub; a request sent before the drop may or may not have taken effect.",
    "INTERNAL": "An unexpected error in the hub. Nothing was changed.",
    "NOT_LEADER": "This node of a cluster is a follower: it refuses /control and /agent connections.",
}


class HubError(Exception):
    """An error the hub answered with (or the SDK raised), with one of ERROR_CODES as `code`."""

    def __init__(self, code: str, message: str, issues: list[dict[str, Any]] | None = None, leader: dict[str, str] | None = None,
                 attempts: list[dict[str, Any]] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code if code in ERROR_CODES else "INTERNAL"
        self.message = message
        self.issues = issues
        #: STALE_ATTEMPT on an agent's report: how that agent's attempts of the order ended ({"number", "outcome"} each).
        self.attempts = attempts
        #: A follower's NOT_LEADER: the leader it names ({"nodeId", "url"}), or None when it knows none.
        self.leader = leader

    def __reduce__(self) -> tuple[type[HubError], tuple[Any, ...]]:
        """Pickled and copied with its own arguments: Exception's default calls HubError(str(self)), a TypeError."""
        return type(self), (self.code, self.message, self.issues, self.leader, self.attempts)

    @classmethod
    def from_wire(cls, error: Any) -> HubError:
        """The HubError of an ack's `error` (or a connect_error's `data`)."""
        if not isinstance(error, dict):
            return cls("INTERNAL", f"malformed error from the hub: {error!r}")
        attempts = error.get("attempts")
        return cls(str(error.get("code", "INTERNAL")), str(error.get("message", "")), error.get("issues"),
                   attempts=attempts if isinstance(attempts, list) else None)


class NonRetryableError(Exception):
    """Raise this from a task handler to fail the work order without retrying it."""
