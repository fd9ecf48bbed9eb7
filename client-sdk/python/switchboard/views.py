"""Views of a workflow (a summary, a page of orders): the name the hub gives each, as shared/schemas/views.ts's `viewName`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

#: How many orders an orders view holds unless told (the hub's DEFAULT_ORDERS_LIMIT).
DEFAULT_ORDERS_LIMIT = 50


def _encode(value: Any) -> str:
    # As JavaScript's encodeURIComponent: only letters, digits and -_.!~*'() stay as they are.
    return quote(str(value), safe="-_.!~*'()")


def view_name(workflow_id: str, view: Mapping[str, Any]) -> str:
    """`<workflowId>/summary` or `<workflowId>/orders?…`: parameters in a fixed order, defaults left out, so equal views share one name."""
    if view.get("kind") == "summary":
        return f"{workflow_id}/summary"
    query: list[str] = []
    if view.get("state") is not None:
        query.append(f"state={view['state']}")
    if view.get("taskType") is not None:
        query.append(f"taskType={_encode(view['taskType'])}")
    if view.get("limit") is not None and view["limit"] != DEFAULT_ORDERS_LIMIT:
        query.append(f"limit={view['limit']}")
    if view.get("before") is not None:
        query.append(f"before={_encode(view['before'])}")
    return f"{workflow_id}/orders?{'&'.join(query)}" if query else f"{workflow_id}/orders"


def is_view_name(name: str) -> bool:
    """Whether a followed name is a view's: a view's holds a "/", which no document's does."""
    return "/" in name
