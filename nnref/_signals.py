"""The signals that stop nnref's commands and runs, how messages name them, and handlers
installed for the length of a block and restored after."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

#: The signals that stop a command or a training run as Ctrl-C does: SIGTERM is what
#: ``timeout``, ``kill``, a container's stop and a batch scheduler's preemption send; SIGHUP what
#: a closed terminal or a dropped SSH session sends (where the OS has it).
STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


def stopped_by(signum: int) -> str:
    """``interrupted`` (Ctrl-C), else ``stopped by SIGTERM`` (or ``SIGHUP``): how messages name
    the signal."""
    return "interrupted" if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}"


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
