"""The SDK's logger: the `switchboard` logger of the logging module, called so that the author's handlers cannot break the SDK."""

from __future__ import annotations

import logging
import sys
import traceback
from typing import Any


class GuardedLogger(logging.LoggerAdapter[logging.Logger]):
    """Logs through `logger`; a handler or filter of the author's that raises (logging calls them in the caller's frame)
    is written to stderr instead of stopping what the SDK was doing: reporting a failed attempt, say."""

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        try:
            # One frame more than logging counts: the record names the SDK's caller, not this method.
            kwargs.setdefault("stacklevel", 2)
            self.logger.log(level, msg, *args, **kwargs)
        except Exception:  # noqa: BLE001 - the author's logging failed; ours must not
            try:
                text = str(msg) % args if args else str(msg)
            except Exception:  # noqa: BLE001
                text = f"{msg!r} % {args!r}"
            print(f"switchboard: the logger raised while logging: {text}", file=sys.stderr)
            traceback.print_exc(file=sys.stderr)


#: The logger every module of the SDK logs through.
log = GuardedLogger(logging.getLogger("switchboard"), {})
