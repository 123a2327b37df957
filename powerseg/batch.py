"""Many files at once: expand folders and lists, skip finished outputs, keep going past bad files."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from powerseg.errors import OptionError, PowersegError
from powerseg.runtime.writers import uri_of

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".au",
                  ".caf", ".w64", ".rf64"}
LIST_SUFFIXES = {".txt", ".lst", ".list"}


def expand(inputs: list[Path]) -> list[Path]:
    """Folders -> their audio files (recursively, sorted); .txt/.lst -> one path per line."""
    files: list[Path] = []
    for path in inputs:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
        elif path.suffix.lower() in LIST_SUFFIXES and path.is_file():
            base = path.parent
            for line in path.read_text().splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    entry = Path(line.strip())
                    files.append(entry if entry.is_absolute() else base / entry)
        else:
            files.append(path)
    return files


@dataclass
class Summary:
    done: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)

    def line(self) -> str:
        return (f"powerseg: {len(self.done)} done, {len(self.skipped)} skipped (output exists), "
                f"{len(self.failed)} failed")


class Progress:
    """One self-rewriting line on a terminal; silent when stderr is a file or pipe."""

    def __init__(self, total: int):
        self.total, self.count = total, 0
        self.enabled = sys.stderr.isatty()
        self.lock = threading.Lock()

    def step(self, name: str) -> None:
        with self.lock:
            self.count += 1
            if self.enabled:
                sys.stderr.write(f"\r[{self.count}/{self.total}] {name[-60:]:<60}")
                sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def output_paths(files: list[Path], output_dir: Path, suffix: str) -> dict[Path, Path]:
    names: dict[str, Path] = {}
    for path in files:
        name = uri_of(path) + suffix
        if name in names and names[name] != path:
            raise OptionError(f"{path} and {names[name]} would both write {output_dir / name}; "
                              "rename one or process them separately")
        names[name] = path
    return {path: output_dir / name for name, path in names.items()}


def run(files: list[Path], output_dir: Path, suffix: str, work: Callable[[Path, Path], None],
        jobs: int = 1, overwrite: bool = False,
        report: Callable[[Path, PowersegError], None] | None = None) -> Summary:
    """``work(input, output)`` for each file, ``jobs`` at a time; a failure skips only that file."""
    targets = output_paths(files, output_dir, suffix)
    summary, progress = Summary(), Progress(len(targets))

    def one(path: Path) -> None:
        target = targets[path]
        try:
            if target.exists() and not overwrite:
                summary.skipped.append(path)
                return
            work(path, target)
            summary.done.append(path)
        except PowersegError as error:
            summary.failed.append((path, str(error)))
            if report:
                report(path, error)
        finally:
            progress.step(path.name)

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(one, targets))
    progress.close()
    return summary
