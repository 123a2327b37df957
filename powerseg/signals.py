"""Ctrl-C and SIGTERM held back while code that must not be cut short runs."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def held() -> Iterator[None]:
    """SIGINT and SIGTERM that arrive inside the block reach the handlers in place before it
    as the block ends, not in its middle. A KeyboardInterrupt raised inside an import or a C
    library's set-up leaves it half done: seen with Ray, a RuntimeError from a class body and
    a crash at exit. Only in the main thread, where Python runs signal handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived: list[int] = []
    numbers = (signal.SIGINT, signal.SIGTERM)
    saved = {number: signal.signal(number, lambda number, frame: arrived.append(number))
             for number in numbers}
    try:
        yield
    finally:
        for number, handler in saved.items():
            signal.signal(number, handler)
        if arrived:
            handler = saved[arrived[0]]
            if callable(handler):
                handler(arrived[0], None)
            elif handler == signal.SIG_DFL:
                os.kill(os.getpid(), arrived[0])
