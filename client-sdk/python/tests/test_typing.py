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


def test_a_decorated_handler_keeps_its_own_type_under_mypy_strict(tmp_path: Path) -> None:
    pytest.importorskip("mypy")
    (tmp_path / "user_agent.py").write_text(DECORATED)
    checked = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache"), "user_agent.py"],
                             cwd=tmp_path, env={"MYPYPATH": str(PACKAGE), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
