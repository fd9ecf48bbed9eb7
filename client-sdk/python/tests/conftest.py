"""Fixtures: a hub started through the CLI, shared by a module's tests; async tests run with asyncio.run."""

from __future__ import annotations

import asyncio
import inspect
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from hub import CONFIG, Hub  # noqa: E402
from scenario import close_all  # noqa: E402

#: No scenario may take longer; a hang fails the test instead of the CI run.
SCENARIO_TIMEOUT_S = 30


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: Any) -> bool | None:
    """Runs `async def test_…` functions on a fresh event loop."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    arguments = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}

    async def scenario() -> None:
        try:
            await asyncio.wait_for(pyfuncitem.obj(**arguments), SCENARIO_TIMEOUT_S)
        finally:
            await close_all()

    asyncio.run(scenario())
    return True


@pytest.fixture(scope="session")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """A hub shared by the tests that do not restart it; each test uses its own ids and task types."""
    running = Hub(tmp_path_factory.mktemp("hub")).start()
    yield running
    running.stop()


@pytest.fixture()
def own_hub(tmp_path: Path) -> Iterator[Hub]:
    """A hub of this test alone (it may stop and start it)."""
    running = Hub(tmp_path).start()
    yield running
    running.stop()


@pytest.fixture()
def archiving_hub(tmp_path: Path) -> Iterator[Hub]:
    """A hub of this test alone that archives a workflow as soon as it ends, so that it can be pruned at once."""
    running = Hub(tmp_path)
    running.config_file.write_text(json.dumps({**CONFIG, "keepFinishedMs": 0}))
    running.start()
    yield running
    running.stop()
