"""The Python examples run against a given hub with its tokens taken as the TypeScript examples take them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hub import Hub

PACKAGE = Path(__file__).resolve().parents[1]


def run_example(name: str, extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Runs an example in a clean environment (no SWITCHBOARD_* of the test run) plus `extra`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SWITCHBOARD_")}
    env.update(PYTHONPATH=str(PACKAGE), **extra)
    return subprocess.run([sys.executable, str(PACKAGE / "examples" / name)], env=env, capture_output=True, text=True, timeout=60)


def test_an_example_takes_a_given_hubs_tokens_from_the_tokens_file_named_by_switchboard_tokens_file(hub: Hub) -> None:
    ran = run_example("basic_workflow.py", {"SWITCHBOARD_URL": hub.url, "SWITCHBOARD_TOKENS_FILE": str(hub.tokens_file)})
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "created workflow" in ran.stdout


def test_an_example_given_a_hub_without_its_tokens_says_which_variables_to_set_and_where_it_looked(hub: Hub) -> None:
    # The hub's data directory holds no tokens.json: it was given --tokens.
    ran = run_example("basic_workflow.py", {"SWITCHBOARD_URL": hub.url, "SWITCHBOARD_DATA_DIR": str(hub.data_dir)})
    assert ran.returncode != 0
    expected = (
        "give SWITCHBOARD_ADMIN_TOKEN, SWITCHBOARD_TOKENS_FILE (a tokens.json) or SWITCHBOARD_DATA_DIR (the hub's data directory): "
        f"there is no {hub.data_dir / 'tokens.json'}"
    )
    assert expected in ran.stderr, ran.stderr
