"""RFC 6902 JSON Patch, the subset the hub sends (add, replace, remove), applied in place."""

from __future__ import annotations

import re
from typing import Any

_INDEX = re.compile(r"^(0|[1-9][0-9]*)$")


def _unescape(segment: str) -> str:
    # RFC 6901: decode ~1 before ~0.
    return segment.replace("~1", "/").replace("~0", "~") if "~" in segment else segment


def _index(array: list[Any], segment: str, for_insert: bool) -> int:
    if for_insert and segment == "-":
        return len(array)
    if not _INDEX.match(segment):
        raise ValueError(f"invalid array index: {segment}")
    index = int(segment)
    if index > len(array) or (not for_insert and index == len(array)):
        raise ValueError(f"array index out of range: {segment}")
    return index


def apply_patch(document: Any, ops: list[dict[str, Any]]) -> Any:
    """Applies the operations in order, mutating `document`, and returns the new root; all or none:
    when one fails, those before it are taken back and the error raised."""
    undo: list[tuple[Any, Any, str, bool, Any]] = []
    try:
        return _apply(document, ops, undo)
    except Exception:
        for parent, key, kind, had, old in reversed(undo):
            if isinstance(parent, list):
                if kind == "add":
                    del parent[key]
                elif kind == "replace":
                    parent[key] = old
                else:
                    parent.insert(key, old)
            elif isinstance(parent, dict):
                if had:
                    parent[key] = old
                else:
                    del parent[key]
        raise


def _apply(document: Any, ops: list[dict[str, Any]], undo: list[tuple[Any, Any, str, bool, Any]]) -> Any:
    root = document
    for op in ops:
        kind, path = op["op"], op["path"]
        if path == "":
            root = None if kind == "remove" else op["value"]
            continue
        if not path.startswith("/"):
            raise ValueError(f"invalid JSON pointer: {path}")
        segments = [_unescape(s) for s in path[1:].split("/")]
        parent = root
        for segment in segments[:-1]:
            if isinstance(parent, list):
                parent = parent[_index(parent, segment, False)]
            elif isinstance(parent, dict) and segment in parent:
                parent = parent[segment]
            else:
                raise ValueError(f"path not found: {path}")
        key = segments[-1]
        if kind not in ("add", "replace", "remove"):
            raise ValueError(f"unsupported op: {kind}")
        if isinstance(parent, list):
            index = _index(parent, key, kind == "add")
            undo.append((parent, index, kind, kind != "add", None if kind == "add" else parent[index]))
            if kind == "add":
                parent.insert(index, op["value"])
            elif kind == "replace":
                parent[index] = op["value"]
            else:
                del parent[index]
        elif isinstance(parent, dict):
            if kind in ("replace", "remove") and key not in parent:
                raise ValueError(f"path not found: {path}")
            undo.append((parent, key, kind, key in parent, parent.get(key)))
            if kind == "remove":
                del parent[key]
            else:
                parent[key] = op["value"]
        else:
            raise ValueError(f"path not found: {path}")
    return root
