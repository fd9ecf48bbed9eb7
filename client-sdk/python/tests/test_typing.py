"""What a user's code gets from the SDK's types under `mypy --strict` (no hub needed: the checker reads the code)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1]

DECORATED = '''
from switchboard import AgentClient, Task, TaskContext, TaskResult, SyncTaskContext

def handlers(agent: AgentClient, task: Task, ctx: TaskContext, blocking: SyncTaskContext) -> None:
    @agent.task("render")
    def render(task: Task, ctx: SyncTaskContext) -> TaskResult:
        return TaskResult({"pages": 1})

    @agent.task("clean")
    async def clean(task: Task, ctx: TaskContext) -> dict[str, int]:
        return {"rows": 1}

    # A handler called in the user's own tests keeps the type it was declared with.
    print(render(task, blocking).outputs)

    async def check() -> int:
        return (await clean(task, ctx))["rows"] + 1
'''

#: A user's listeners: each gets its event's type, and a name there is not (line 8) is an error.
LISTENERS = '''
from switchboard import AgentClient, MonitorClient

def listen(agent: AgentClient, monitor: MonitorClient) -> None:
    agent.on("report", lambda report: print(report.work_order_id, report.accepted))
    agent.on("draining", lambda draining: print(not draining))
    monitor.on("change", lambda change: print(change.to_version + 1))
    agent.on("reports", print)
'''


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The errors `mypy --strict` finds in the user code above (one run for every test here: it takes seconds)."""
    pytest.importorskip("mypy")
    tmp_path = tmp_path_factory.mktemp("typing")
    (tmp_path / "user_agent.py").write_text(DECORATED)
    (tmp_path / "user_listeners.py").write_text(LISTENERS)
    run = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache"),
                          "user_agent.py", "user_listeners.py"],
                         cwd=tmp_path, env={"MYPYPATH": str(PACKAGE), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True)
    assert "error: " not in run.stderr, run.stderr
    return [line for line in run.stdout.splitlines() if ": error:" in line]


def test_a_decorated_handler_keeps_its_own_type_under_mypy_strict(checked: list[str]) -> None:
    assert [line for line in checked if line.startswith("user_agent.py")] == []


def test_a_listener_gets_its_events_type_and_an_event_there_is_not_is_a_type_error(checked: list[str]) -> None:
    errors = [line for line in checked if line.startswith("user_listeners.py")]
    assert len(errors) == 1 and errors[0].startswith('user_listeners.py:8: error: No overload variant of "on"'), errors
