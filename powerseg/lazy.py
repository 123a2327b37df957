"""Package faces whose public names load on first use, so that `import powerseg` and
`powerseg vad` do not pay for the diarization stack (scipy) they do not use."""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib import import_module


def lazy_names(package: str, names: dict[str, str],
               public: list[str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """A package's module-level ``__getattr__`` and ``__dir__``: ``names`` maps each lazy
    name to the module (relative to ``package``) that defines it."""

    def __getattr__(name: str) -> object:
        if name in names:
            value = getattr(import_module(names[name], package), name)
            setattr(sys.modules[package], name, value)
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *public})

    return __getattr__, __dir__
