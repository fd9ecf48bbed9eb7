"""The hub an example talks to: SWITCHBOARD_URL with tokens from the environment, or a fresh one started through the CLI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


@dataclass
class ExampleHub:
    """A hub's URL and its token per role; `close()` stops it if the example started it."""

    url: str
    tokens: dict[str, str]
    process: subprocess.Popen[str] | None = field(default=None, repr=False)

    def close(self) -> None:
        """Stops the hub this example started (nothing for a hub given by SWITCHBOARD_URL)."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=15)


def given_tokens() -> dict[str, str]:
    """Tokens of a given hub: SWITCHBOARD_<ROLE>_TOKEN, else the tokens.json named by SWITCHBOARD_TOKENS_FILE, else the
    data directory's (SWITCHBOARD_DATA_DIR, default ./.switchboard), as the TypeScript examples take them
    (examples/support/hub.ts) and the hub and its CLI find them."""
    file = Path(os.environ.get("SWITCHBOARD_TOKENS_FILE") or Path(os.environ.get("SWITCHBOARD_DATA_DIR") or ".switchboard") / "tokens.json")
    grants = json.loads(file.read_text()) if file.exists() else []
    tokens: dict[str, str] = {}
    for role in ("admin", "agent", "monitor"):
        name = f"SWITCHBOARD_{role.upper()}_TOKEN"
        token = os.environ.get(name) or next((grant["token"] for grant in grants if grant.get("role") == role), None)
        if not token:
            where = f"{file} has no {role} token" if file.exists() else f"there is no {file}"
            raise SystemExit(
                f"SWITCHBOARD_URL is set: give {name}, SWITCHBOARD_TOKENS_FILE (a tokens.json) or SWITCHBOARD_DATA_DIR (the hub's data directory): {where}"
            )
        tokens[role] = token
    return tokens


def use_hub() -> ExampleHub:
    """The hub at SWITCHBOARD_URL (tokens from the environment, see given_tokens), else one started on a free port."""
    url = os.environ.get("SWITCHBOARD_URL")
    if url:
        return ExampleHub(url, given_tokens())
    data_dir = tempfile.mkdtemp(prefix="switchboard-example-")
    process = subprocess.Popen(
        ["node", str(REPO / "bin" / "switchboard.mjs"), "start", "--port", "0", "--data-dir", data_dir, "--log-level", "warn"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        found = re.search(r"listening on (http://\S+)", line)
        if found:
            grants = json.loads((Path(data_dir) / "tokens.json").read_text())
            return ExampleHub(found.group(1), {grant["role"]: grant["token"] for grant in grants}, process)
    raise RuntimeError("the hub did not start")
