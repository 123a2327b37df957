"""A ring of rows with a moving start: what a stream holds between windows."""

from __future__ import annotations

import numpy as np


class RowBuffer:
    """Rows (samples, or front-end rows of any fixed shape) appended at the end, dropped at the
    start, addressed by their absolute index in the whole stream (``start`` is the first held).

    A ring: appending never moves the rows held, and the room stays what the stream needs at
    most (grown by a quarter when it is not enough). Rows that wrap around the end come as two
    ``segments``; ``take`` copies them into one array only then. Views are valid until the
    next ``append``.
    """

    def __init__(self, shape: tuple[int, ...] = (), capacity: int = 1 << 16):
        self.data = np.zeros((capacity, *shape), dtype=np.float32)
        self.start = 0  # absolute index of the first row held
        self.stop = 0  # absolute index one past the last row held

    def __len__(self) -> int:
        return self.stop - self.start

    def append(self, rows: np.ndarray) -> None:
        if len(self) + len(rows) > len(self.data):
            self._grow(len(self) + len(rows))
        self._write(self.stop, rows)
        self.stop += len(rows)

    def _grow(self, need: int) -> None:
        held = self.take(self.start, len(self))  # the old array stays while ``held`` views it
        self.data = np.zeros((max(need, len(self.data) * 5 // 4), *self.data.shape[1:]),
                             dtype=np.float32)
        self._write(self.start, held)

    def _write(self, at: int, rows: np.ndarray) -> None:
        done = 0
        for part in self._spans(at, len(rows)):
            size = part.stop - part.start
            self.data[part] = rows[done:done + size]
            done += size

    def _spans(self, at: int, length: int) -> list[slice]:
        """Where rows [at, at + length) sit in ``data``: one slice, or two when they wrap."""
        first = at % len(self.data)
        head = min(length, len(self.data) - first)
        spans = [slice(first, first + head)]
        if length > head:
            spans.append(slice(0, length - head))
        return spans

    def segments(self, at: int, length: int) -> list[np.ndarray]:
        """Rows [at, at + length), all held, as one view or two (when they wrap)."""
        if at < self.start or at + length > self.stop:
            raise IndexError(f"rows [{at}, {at + length}) are not all held "
                             f"([{self.start}, {self.stop}) are)")
        return [self.data[part] for part in self._spans(at, length)]

    def take(self, at: int, length: int) -> np.ndarray:
        """Rows [at, at + length) in one array: a view when they are held and do not wrap,
        else a copy, with zeros past the last row held."""
        if at < self.start:
            raise IndexError(f"rows before {self.start} were dropped (asked from {at})")
        held = max(0, min(length, self.stop - at))
        parts = self.segments(at, held) if held else []
        if held == length and len(parts) == 1:
            return parts[0]
        out = np.zeros((length, *self.data.shape[1:]), dtype=np.float32)
        if parts:
            np.concatenate(parts, out=out[:held])
        return out

    def truncate(self, stop: int) -> None:
        """Let go of the rows from absolute index ``stop`` on."""
        self.stop = max(self.start, min(self.stop, stop))

    def drop_before(self, at: int) -> None:
        """Let go of the rows before absolute index ``at``."""
        self.start = max(self.start, min(self.stop, at))
