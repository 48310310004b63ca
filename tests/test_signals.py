"""nnref._signals.handled: handlers for a block, restored after."""

from __future__ import annotations

import signal
import threading

import pytest

from nnref import _signals


def _mine(signum, frame) -> None:
    pass


def test_installs_for_the_block_and_restores_even_on_error() -> None:
    before = signal.getsignal(signal.SIGTERM)
    inside = []

    def fails() -> None:
        with _signals.handled([signal.SIGTERM], _mine):
            inside.append(signal.getsignal(signal.SIGTERM))
            raise KeyError

    with pytest.raises(KeyError):
        fails()
    assert inside == [_mine]
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_handler_not_installed_from_python_is_restored_as_the_default(monkeypatch) -> None:
    # signal.signal returns None for a handler a host installed in C, and takes no None back.
    calls = []
    real = signal.signal

    def install(s, h):
        calls.append(h)
        real(s, h)
        return None if len(calls) == 1 else _mine

    monkeypatch.setattr(_signals.signal, "signal", install)
    before = signal.getsignal(signal.SIGTERM)
    try:
        with _signals.handled([signal.SIGTERM], _mine):
            pass
        assert calls == [_mine, signal.SIG_DFL]
    finally:
        real(signal.SIGTERM, before)


def test_outside_the_main_thread_nothing_is_installed() -> None:
    seen = []

    def worker() -> None:
        with _signals.handled([signal.SIGTERM], _mine):
            seen.append(signal.getsignal(signal.SIGTERM))

    before = signal.getsignal(signal.SIGTERM)
    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen == [before]
