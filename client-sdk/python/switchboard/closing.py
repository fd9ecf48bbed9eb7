"""What every client shares for `async with`: the block closes it."""

from __future__ import annotations

from typing import Self


class ClosesOnExit:
    """`async with await connect_…(...) as client:` closes the client when the block ends."""

    async def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
