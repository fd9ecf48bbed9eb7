"""A HubError keeps its code, message and details when it is copied or pickled (a process pool hands errors back pickled)."""

from __future__ import annotations

import copy
import pickle

import pytest
from hub import Hub
from scenario import clients, unique
from switchboard import HubError


async def test_a_hub_refusal_survives_pickling_and_copying_with_its_code_message_and_issues(hub: Hub) -> None:
    control, _monitor = await clients(hub)
    wf = await control.create_workflow(unique("refusals that travel"))
    with pytest.raises(HubError) as refused:
        await wf.pause(reason=5)  # type: ignore[arg-type]
    error = refused.value
    assert error.code == "VALIDATION" and error.issues
    for again in (pickle.loads(pickle.dumps(error)), copy.copy(error), copy.deepcopy(error)):
        assert type(again) is HubError
        assert (again.code, again.message, again.issues, again.attempts, again.leader, str(again)) == (
            error.code, error.message, error.issues, error.attempts, error.leader, str(error))
