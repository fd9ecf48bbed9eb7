"""Request payloads from Python keyword arguments: snake_case names become the protocol's camelCase."""

from __future__ import annotations

from typing import Any


def camel(name: str) -> str:
    """`user_query` → `userQuery`; a name already in camelCase stays as it is."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def fields(values: dict[str, Any], nested: tuple[str, ...] = ("config", "timeouts")) -> dict[str, Any]:
    """The payload of keyword arguments: None left out, names in camelCase (also inside `nested` objects)."""
    payload: dict[str, Any] = {}
    for name, value in values.items():
        if value is None:
            continue
        key = camel(name)
        payload[key] = fields(value, ()) if key in nested and isinstance(value, dict) else value
    return payload
