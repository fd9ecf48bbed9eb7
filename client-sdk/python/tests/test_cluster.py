"""Clients of a cluster: nodes on one PostgreSQL (started by the repository's own harness), found and followed by the SDK."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub import REPO, TOKENS, Hub
from scenario import _opened, unique, until
from switchboard import HubError, Task, TaskContext, connect_agent, connect_control

#: Short leases, so that a failover happens within a test.
FAST = {"leaseMs": 1000, "leaseRenewMs": 100, "leaseCheckMs": 50}


@pytest.fixture()
def postgres() -> Iterator[str]:
    """A new database on a PostgreSQL of this test's own (test/helpers/postgres-process.ts), destroyed after it."""
    process = subprocess.Popen(["node", "--import", "tsx", "test/helpers/postgres-process.ts"], cwd=REPO, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdin is not None
    started = json.loads(process.stdout.readline() or "{}")
    try:
        if "skip" in started:
            pytest.skip(started["skip"])
        assert "url" in started, "the PostgreSQL harness did not start"
        yield started["url"]
    finally:
        process.stdin.close()
        process.wait(timeout=30)


def node(root: Path, postgres: str, node_id: str, **config: Any) -> Hub:
    """A cluster node started through the CLI, with short leases."""
    return Hub(root / node_id, {"postgres": postgres, "nodeId": node_id, **FAST, **config}).start()


@pytest.fixture()
def nodes(tmp_path: Path, postgres: str) -> Iterator[list[Hub]]:
    """Two nodes: the first leads, the second follows (and knows the leader)."""
    started = [node(tmp_path, postgres, "node-a")]
    try:
        started.append(node(tmp_path, postgres, "node-b"))
        yield started
    finally:
        for hub in reversed(started):
            hub.stop()


async def knows_leader(follower: Hub, leader: Hub) -> None:
    """Waits until `follower` refuses writers naming `leader` (it has looked at the lease)."""
    async def named() -> bool:
        try:
            control = await connect_control(follower.url, TOKENS["admin"], connect_timeout=1)
        except HubError:
            return False
        await control.close()
        return control.connection.url == leader.url

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    while not await named():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {follower.url} to name the leader {leader.url}")
        await asyncio.sleep(0.05)


async def test_a_client_given_a_followers_url_is_sent_on_to_the_leader(nodes: list[Hub]) -> None:
    leader, follower = nodes
    await knows_leader(follower, leader)
    control = await connect_control(follower.url, TOKENS["admin"])
    _opened.append(control)
    assert control.connection.url == leader.url
    wf = await control.create_workflow("through the follower")
    assert [found["id"] async for found in control.workflows()] == [wf.id]


async def test_a_client_sent_on_by_a_follower_takes_answers_over_4_mb(nodes: list[Hub]) -> None:
    leader, follower = nodes
    await knows_leader(follower, leader)
    control = await connect_control([follower.url, leader.url], TOKENS["admin"])
    _opened.append(control)
    assert control.connection.url == leader.url
    drops: list[bool] = []
    control.connection.on_disconnect(lambda: drops.append(True))
    # 60 orders of 90 KB of input, then one page of them: an answer of about 5.4 MB (aiohttp's default bound is 4 MB).
    wf = await control.create_workflow("a big page")
    for _ in range(6):
        await wf.create_work_orders([{"task_type": "never-run", "input": {"blob": "x" * 90_000}} for _ in range(10)])
    assert len((await wf.list_work_orders(limit=100))["items"]) == 60
    assert drops == []


async def test_an_agent_given_every_node_finishes_its_task_on_the_new_leader_after_a_failover(nodes: list[Hub]) -> None:
    first, second = nodes
    urls = [first.url, second.url]
    task_type = unique("failover")
    running = asyncio.Event()
    release = asyncio.Event()

    async def work(task: Task, ctx: TaskContext) -> dict[str, str]:
        running.set()
        await release.wait()
        return {"done": "after the failover"}

    agent = await connect_agent(urls, TOKENS["agent"], agent_id=unique("py-agent"), agent_type="test")
    control = await connect_control(urls, TOKENS["admin"])
    _opened.extend([agent, control])
    await agent.on_task(task_type, work)
    await agent.ready()
    wf = await control.create_workflow("failover")
    await wf.start()
    order = await wf.create_work_order(task_type, id="o1")
    await asyncio.wait_for(running.wait(), 15)
    # A clean stop gives the lease up: the second node takes it at its next look.
    await asyncio.get_running_loop().run_in_executor(None, first.stop)
    await until(lambda: agent.connection.connected and agent.connection.url == second.url, "the agent to be on the new leader")
    release.set()

    async def finished() -> Any:
        try:
            found = await wf.get_work_order(order["id"])
        except HubError:
            return None
        return found if found["state"] == "completed" else None

    done: Any = None
    while done is None:
        done = await finished()
        await asyncio.sleep(0.02)
    assert done["attempts"] == 1 and done["result"] == {"done": "after the failover"}
    assert control.connection.url == second.url


async def test_a_follower_naming_a_leader_that_is_gone_fails_the_connection_naming_the_nodes_tried(tmp_path: Path, postgres: str) -> None:
    # A long lease: killed, the leader stays named until it runs out.
    first = node(tmp_path, postgres, "node-a", leaseMs=30_000, leaseRenewMs=1000)
    second = node(tmp_path, postgres, "node-b", leaseMs=30_000, leaseRenewMs=1000)
    try:
        await knows_leader(second, first)
        assert first._process is not None
        first._process.send_signal(signal.SIGKILL)
        first._process.wait()
        with pytest.raises(HubError) as refused:
            await connect_control(second.url, TOKENS["admin"], connect_timeout=1.5)
        assert refused.value.code == "DISCONNECTED"
        assert f"no leader reached within 1.5 s (tried {second.url}, {first.url})" in refused.value.message
    finally:
        second.stop()
        first.stop()
