"""A real hub for the tests, started through the CLI (`node bin/switchboard.mjs start`) on a free port."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
TOKENS = {"admin": "py-admin-token", "agent": "py-agent-token", "monitor": "py-monitor-token"}
#: Short timers so that retries and sweeps happen within a test, not after it.
CONFIG = {"sweepIntervalMs": 50, "backoffBaseMs": 50, "backoffMaxMs": 200}


class Hub:
    """One hub process with its own data directory and tokens; restartable on the same port and data."""

    def __init__(self, root: Path, config: dict[str, object] | None = None) -> None:
        self.data_dir = root / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.tokens_file = root / "tokens.json"
        self.tokens_file.write_text(json.dumps([{"token": t, "role": r, "name": f"py-{r}"} for r, t in TOKENS.items()]))
        self.config_file = root / "config.json"
        self.config_file.write_text(json.dumps({**CONFIG, **(config or {})}))
        self.port = 0
        self.url = ""
        self.log: list[str] = []
        self._process: subprocess.Popen[str] | None = None
        self._drainer: threading.Thread | None = None

    def start(self) -> Hub:
        """Starts the hub (on the port it had before, if it ran) and waits for its banner."""
        command = ["node", str(REPO / "bin" / "switchboard.mjs"), "start", "--port", str(self.port), "--host", "127.0.0.1",
                   "--data-dir", str(self.data_dir), "--tokens", str(self.tokens_file), "--config", str(self.config_file),
                   "--log-level", "warn"]
        process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self._process = process
        assert process.stdout is not None
        for line in process.stdout:
            self.log.append(line)
            found = re.search(r"listening on (http://127\.0\.0\.1:(\d+))", line)
            if found:
                self.url, self.port = found.group(1), int(found.group(2))
                break
        else:
            raise RuntimeError("the hub did not start:\n" + "".join(self.log))
        self._drainer = threading.Thread(target=self._drain, args=(process,), daemon=True)
        self._drainer.start()
        return self

    def _drain(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.log.append(line)

    def reload(self, grants: list[dict[str, object]]) -> None:
        """Writes `grants` to the token file and has the hub read it again (SIGHUP), waiting until it says so."""
        assert self._process is not None
        self.tokens_file.write_text(json.dumps(grants))
        before = len(self.log)
        self._process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 15
        while not any(line.startswith("SIGHUP:") for line in self.log[before:]):
            if time.monotonic() > deadline:
                raise RuntimeError("the hub did not reload its tokens:\n" + "".join(self.log))
            time.sleep(0.01)

    def stop(self, *, crash: bool = False) -> None:
        """Stops the hub process this object started (SIGTERM, then waits for it to exit); `crash`: SIGKILL,
        so that the next start resumes none of the monitors' versions (after a clean stop it resumes them)."""
        process, self._process = self._process, None
        if process is None:
            return
        if crash:
            process.kill()
        else:
            process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if self._drainer is not None:
            self._drainer.join(timeout=5)
        if process.stdout is not None:
            process.stdout.close()
