"""The hub URL a client is given is checked before any connection, with a hint at what was meant."""

from __future__ import annotations

import pytest
from hub import TOKENS, Hub
from scenario import unique

from switchboard import connect_control
from switchboard.errors import HubError
from switchboard.failover import hub_url, hub_urls


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("localhost:4700", "has no http:// or https:// scheme; did you mean http://localhost:4700?"),
        ("127.0.0.1:4700", "did you mean http://127.0.0.1:4700?"),
        ("", "did you mean http://127.0.0.1:4700?"),
        ("ftp://hub:4700", "needs the scheme http or https and a host"),
        ("http://:4700", "needs the scheme http or https and a host"),
        ("http://hub:99999", "check its port (1-65535)"),
        ("http://hub:4700/agents", "has a path (/agents)"),
    ],
)
def test_a_bad_hub_url_is_refused_naming_what_is_wrong(given: str, says: str) -> None:
    with pytest.raises(HubError) as refused:
        hub_url(given)
    assert refused.value.code == "VALIDATION"
    assert says in refused.value.message


def test_a_good_hub_url_comes_back_without_its_trailing_slash_and_a_list_without_repeats() -> None:
    assert hub_url("http://127.0.0.1:4700/") == "http://127.0.0.1:4700"
    assert hub_url("https://hub.example") == "https://hub.example"
    assert hub_urls(["http://a:4700", "http://a:4700/", "http://b:4700"]) == ["http://a:4700", "http://b:4700"]


async def test_a_ws_url_as_the_typescript_sdk_and_the_cli_take_it_reaches_the_hub_over_http(hub: Hub) -> None:
    # SWITCHBOARD_URL=ws://… (PROTOCOL.md names the endpoint so) is read as http://…, as the CLI and the TypeScript SDK read it.
    assert hub_urls(["wss://hub.example/", "https://hub.example"]) == ["https://hub.example"]
    control = await connect_control(hub.url.replace("http://", "ws://"), TOKENS["admin"])
    try:
        assert control.connection.url == hub.url
        assert (await control.create_workflow(unique("reached over ws://"))).version == 1
    finally:
        await control.close()
