"""Signal handlers installed for the length of a block and restored after."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any


@contextlib.contextmanager
def handled(signals: Sequence[int], handler: Callable[[int, Any], Any]) -> Iterator[None]:
    """Install ``handler`` for ``signals`` (whatever the handlers before: a shell may start a
    background job with SIGINT ignored) and restore those after. Outside the main thread, where
    Python cannot catch signals, nothing is installed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        yield
    finally:
        for s, before in previous.items():
            # None: a handler not installed from Python (an embedding host's), which cannot be
            # put back; the default then, rather than a TypeError over the block's own outcome.
            signal.signal(s, signal.SIG_DFL if before is None else before)
