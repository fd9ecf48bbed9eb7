"""switchboard: the Python SDK of the Switchboard hub (asyncio; `switchboard.sync` for scripts)."""

from .agent import AgentClient, TaskReport, connect_agent
from .control import ControlClient, connect_control
from .errors import ERROR_CODES, HubError, NonRetryableError
from .mirror import Mirror, MirrorChange
from .monitor import MonitorClient, connect_monitor
from .task import SyncTaskContext, Task, TaskContext, TaskResult
from .workflow import Pause, PauseState, Workflow

__all__ = [
    "AgentClient", "ControlClient", "ERROR_CODES", "HubError", "Mirror", "MirrorChange", "MonitorClient",
    "NonRetryableError", "Pause", "PauseState", "SyncTaskContext", "Task", "TaskContext", "TaskReport", "TaskResult", "Workflow",
    "connect_agent", "connect_control", "connect_monitor",
]
__version__ = "0.1.0"
