"""An append-only buffer of rows with a moving start: what a stream holds between windows."""

from __future__ import annotations

import numpy as np


class RowBuffer:
    """Rows (samples, or front-end rows of any fixed shape) appended at the end, dropped at the start.

    Appends are amortised O(1): when the end is reached, the held rows move to the front, into
    1.25x their size if they no longer fit (so a stream's buffers stay within about a quarter
    of what they must hold); ``start`` is the absolute index of the first row held, so
    callers address rows by their position in the whole stream. A view handed out is valid
    until the next ``append`` (which may move the held rows).
    """

    def __init__(self, shape: tuple[int, ...] = (), capacity: int = 1 << 16):
        self.data = np.zeros((capacity, *shape), dtype=np.float32)
        self.begin = 0  # index in ``data`` of the first row held
        self.end = 0
        self.start = 0  # absolute index of the first row held

    def __len__(self) -> int:
        return self.end - self.begin

    @property
    def stop(self) -> int:
        """Absolute index one past the last row held."""
        return self.start + len(self)

    def append(self, rows: np.ndarray) -> None:
        n = len(rows)
        if self.end + n > len(self.data):
            live = self.data[self.begin:self.end]
            size = max(len(self.data), (len(live) + n) * 5 // 4)
            grown = np.zeros((size, *self.data.shape[1:]), np.float32) \
                if size > len(self.data) else self.data
            grown[:len(live)] = live
            self.data, self.begin, self.end = grown, 0, len(live)
        self.data[self.end:self.end + n] = rows
        self.end += n

    def view(self, at: int, length: int) -> np.ndarray:
        """Rows [at, at + length) by absolute index, all of them held (a view, not a copy)."""
        first = at - self.start
        if first < 0 or first + length > len(self):
            raise IndexError(f"rows [{at}, {at + length}) are not all held "
                             f"([{self.start}, {self.stop}) are)")
        return self.data[self.begin + first:self.begin + first + length]

    def take(self, at: int, length: int) -> np.ndarray:
        """Rows [at, at + length): a view when all are held, else a copy with zeros past the
        last row held."""
        first = at - self.start
        if first < 0:
            raise IndexError(f"rows before {self.start} were dropped (asked from {at})")
        if first + length <= len(self):
            return self.view(at, length)
        out = np.zeros((length, *self.data.shape[1:]), dtype=np.float32)
        held = self.data[self.begin + first:min(self.end, self.begin + first + length)]
        out[:len(held)] = held
        return out

    def truncate(self, stop: int) -> None:
        """Let go of the rows from absolute index ``stop`` on."""
        self.end = self.begin + min(len(self), max(0, stop - self.start))

    def drop_before(self, at: int) -> None:
        """Let go of the rows before absolute index ``at``."""
        count = min(len(self), max(0, at - self.start))
        self.begin += count
        self.start += count
