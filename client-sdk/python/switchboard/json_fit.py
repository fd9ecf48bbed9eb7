"""What a payload holds that would not reach the hub as it is, named by where it is."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

#: The largest whole number the hub (JavaScript numbers) holds exactly.
MAX_EXACT_INT = 2**53 - 1
#: Levels of lists and dicts a payload may nest. The hub takes 16 in a value (an input, a result), so a deeper payload is
#: refused anyway; past Python's recursion limit, checking or writing it raised a bare RecursionError instead.
MAX_DEPTH = 64


def check_json_fit(event: str, value: Any) -> None:
    """Raises ValueError (a number) or TypeError (a key) naming where `value` holds what the hub would not get as sent.

    json writes an int of any size and converts int, float, bool and None keys to strings: the hub, which reads
    numbers as doubles, stored an int64 id rounded, and of two keys that collide once written ({1: a, "1": b}) kept
    one without a word. NaN and infinity are named here too (json refuses them, without saying where). Other types
    json cannot write (a set) are left to json's own TypeError.
    """
    found = _check(value, set())
    if found is None:
        return
    kind, why, path = found
    where = ""
    for step in reversed(path):
        where += f"[{step}]" if isinstance(step, int) else (f".{step}" if where else step)
    raise kind(f"{event} cannot be sent: {where or 'the payload'} {why}")


def _written_back(value: int) -> bool:
    """Whether the hub, reading `value` as a double, writes that very number back: so it is for the larger whole numbers
    it sends itself (a JavaScript number of 2**53 or more, as 1152921504606847000 for 2**60), which an agent may return."""
    try:
        return int(Decimal(repr(float(value)))) == value
    except OverflowError:
        return False


def _check(value: Any, ancestors: set[int]) -> tuple[type[Exception], str, list[str | int]] | None:
    # bool is an int: True is no number out of range.
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return None
    if isinstance(value, int):
        if -MAX_EXACT_INT <= value <= MAX_EXACT_INT or _written_back(value):
            return None
        return ValueError, f"is {value}, a whole number beyond ±(2**53 - 1) that the hub would round: send it as a string", []
    if isinstance(value, float):
        return None if math.isfinite(value) else (ValueError, f"is {value}, which JSON cannot hold", [])
    if not isinstance(value, (dict, list, tuple)):
        return None
    if id(value) in ancestors:
        return ValueError, "refers back to a value that holds it: JSON cannot hold a cycle", []
    if len(ancestors) == MAX_DEPTH:
        return ValueError, f"is nested deeper than {MAX_DEPTH} levels of lists and dicts (the hub takes 16 in a value)", []
    ancestors.add(id(value))
    try:
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    return TypeError, f"has the key {key!r} ({type(key).__name__}): JSON keys are strings, and json would write it as one without a word", []
                found = _check(item, ancestors)
                if found is not None:
                    found[2].append(key)
                    return found
        else:
            for index, item in enumerate(value):
                found = _check(item, ancestors)
                if found is not None:
                    found[2].append(index)
                    return found
        return None
    finally:
        ancestors.discard(id(value))
