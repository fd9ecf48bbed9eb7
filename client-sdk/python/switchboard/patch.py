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
    """Applies the operations in order, mutating `document`, and returns the new root."""
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
        if isinstance(parent, list):
            if kind == "add":
                parent.insert(_index(parent, key, True), op["value"])
            elif kind == "replace":
                parent[_index(parent, key, False)] = op["value"]
            elif kind == "remove":
                del parent[_index(parent, key, False)]
            else:
                raise ValueError(f"unsupported op: {kind}")
        elif isinstance(parent, dict):
            if kind in ("replace", "remove") and key not in parent:
                raise ValueError(f"path not found: {path}")
            if kind in ("add", "replace"):
                parent[key] = op["value"]
            elif kind == "remove":
                del parent[key]
            else:
                raise ValueError(f"unsupported op: {kind}")
        else:
            raise ValueError(f"path not found: {path}")
    return root
