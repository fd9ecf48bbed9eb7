"""What a request weighs on the wire: text goes as UTF-8, as the TypeScript SDK sends it, not as \\u escapes."""

from __future__ import annotations

from hub import Hub
from scenario import clients, unique


async def test_non_ascii_text_that_fits_the_hubs_message_bound_as_utf8_is_sent_and_kept(hub: Hub) -> None:
    control, _monitor = await clients(hub)
    wf = await control.create_workflow(unique("accented input"))
    # Three inputs of 200 KB as UTF-8 (each under the hub's 256 KB): 600 KB in all, under its 1 MiB message bound;
    # 1.8 MB written as \u00e9 escapes, over it.
    text, kind = "é" * 100_000, unique("nobody")
    orders = await wf.create_work_orders([{"id": f"accented-{i}", "task_type": kind, "input": {"text": text}} for i in range(3)])
    assert [order["input"]["text"] == text for order in orders] == [True] * 3
    assert (await wf.get_work_order("accented-2"))["input"]["text"] == text
    assert control.connection.drops == 0


async def test_a_string_with_a_lone_surrogate_reaches_the_hub_as_json_writes_it(hub: Hub) -> None:
    control, _monitor = await clients(hub)
    wf = await control.create_workflow(unique("lone surrogate"))
    # Not UTF-8: written as the escape \ud800, which the hub reads back as the same lone surrogate.
    order = await wf.create_work_order(unique("nobody"), id="surrogate", input={"text": "a\ud800b"})
    assert order["input"]["text"] == "a\ud800b"
    assert control.connection.drops == 0
