"""Many files at once: expand folders and lists, skip finished outputs, keep going past bad files.

``Task`` says what to compute for each input; ``Task.producer()`` loads the models once and gives
the output bytes of one input. The local batch mode (``run``) and the Ray cluster mode
(``powerseg.ray_runner``) both write exactly those bytes, so a file's output is the same either way.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from typing import TYPE_CHECKING

from powerseg.errors import AudioNotFoundError, OptionError, PowersegError
from powerseg.runtime.contracts import StageHook
from powerseg.runtime.writers import atomic_output, npz_bytes, uri_of

if TYPE_CHECKING:
    from powerseg.runtime import (BinarizeOptions, DiarizerOptions, EmbedderOptions,
                                  SegmenterOptions)

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".au",
                  ".caf", ".w64", ".rf64"}
LIST_SUFFIXES = {".txt", ".lst", ".list"}


def expand(inputs: list[Path]) -> list[Path]:
    """Folders -> their audio files (recursively, sorted); .txt/.lst -> one path per line.

    A folder without audio or a list without entries is an error (AudioNotFoundError): there is
    nothing to do, and saying nothing would look like success."""
    files: list[Path] = []
    for path in inputs:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES
                           and p.is_file())
            if not found:
                raise AudioNotFoundError(f"{path}: no audio files in this folder (looked for "
                                         f"{', '.join(sorted(AUDIO_SUFFIXES))})")
            files += found
        elif path.suffix.lower() in LIST_SUFFIXES and path.is_file():
            base = path.parent
            listed = [line.strip() for line in path.read_text().splitlines()
                      if line.strip() and not line.lstrip().startswith("#")]
            if not listed:
                raise AudioNotFoundError(f"{path}: the list names no audio files")
            for line in listed:
                entry = Path(line)
                files.append(entry if entry.is_absolute() else base / entry)
        else:
            files.append(path)
    return files


# ---- what to compute per input ---------------------------------------------------------------

COMMANDS = ("vad", "osd", "scores", "diarize", "embed")


@dataclass(frozen=True)
class Task:
    """One command and its options, as the frozen Options objects the pipelines take
    (picklable: Ray ships them to its workers, which build the same models from them).

    ``model``: ``SegmenterOptions`` (vad, osd, scores), ``DiarizerOptions`` (diarize) or
    ``EmbedderOptions`` (embed: one whole-input embedding);
    ``binarize``: ``BinarizeOptions`` (vad, osd); ``speakers``: num/min/max_speakers;
    ``voices``: a voice bank's path, its speakers named after it (diarize)."""

    command: str
    format: str  # "rttm" or "json" (vad, osd, diarize); "npz" (scores, embed)
    model: SegmenterOptions | DiarizerOptions | EmbedderOptions
    binarize: BinarizeOptions | None = None
    speakers: dict = field(default_factory=dict)
    exclusive: bool = False
    voices: str | None = None
    voice_threshold: float | None = None

    @property
    def suffix(self) -> str:
        return f".{self.format}"

    def validate(self) -> None:
        """The option errors a worker would meet, here and now, without loading a model (the
        Options objects checked themselves when made)."""
        from powerseg.runtime import BinarizeOptions, SegmenterOptions

        if self.command not in COMMANDS:
            raise OptionError(f"command must be one of {', '.join(COMMANDS)}, got {self.command!r}")
        formats = ("npz",) if self.command in ("scores", "embed") else ("rttm", "json")
        if self.format not in formats:
            raise OptionError(f"{self.command} writes {' or '.join(formats)}, not {self.format!r}")
        if self.command == "diarize":
            from powerseg.runtime.diarization.diarizer import DiarizerOptions, speaker_bounds
            from powerseg.runtime.diarization.voices import check_voices

            expected = DiarizerOptions
            speaker_bounds(**self.speakers)
            check_voices(self.voices, self.voice_threshold)
        elif self.command == "embed":
            from powerseg.runtime import EmbedderOptions

            expected = EmbedderOptions
        else:
            expected = SegmenterOptions
            if self.command != "scores" and not isinstance(self.binarize, BinarizeOptions):
                raise OptionError(f"{self.command} needs BinarizeOptions, got {self.binarize!r}")
        if not isinstance(self.model, expected):
            raise OptionError(f"{self.command} needs {expected.__name__}, got "
                              f"{type(self.model).__name__}")

    def producer(self) -> Producer:
        return Producer(self)


class Producer:
    """The models of a ``Task``, loaded once; ``producer(path)`` -> that input's output bytes."""

    def __init__(self, task: Task):
        from powerseg.runtime import Segmenter

        task.validate()
        self.task = task
        if task.command == "diarize":
            from powerseg.runtime import Diarizer

            self.model = Diarizer(options=task.model, voices=task.voices,
                                  voice_threshold=task.voice_threshold)
        elif task.command == "embed":
            from powerseg.runtime import Embedder

            self.model = Embedder(options=task.model)
        else:
            self.model = Segmenter(options=task.model)
            self.options = task.binarize

    def records(self, path: Path, hook: StageHook | None = None) -> tuple[list[str], dict]:
        """(RTTM lines, JSON document) of one input (vad, osd, diarize); ``hook``: the
        pipeline's stage hook (progress, cancellation)."""
        from powerseg.runtime.writers import regions_json, rttm_lines

        uri, task = uri_of(path), self.task
        if task.command == "diarize":
            return diarization_records(uri, self.model(path, hook=hook, **task.speakers),
                                       task.exclusive)
        result = self.model(path, activations=False, hook=hook)  # memory flat in the duration
        found = result.vad(self.options) if task.command == "vad" else result.osd(self.options)
        return rttm_lines(uri, found), regions_json(uri, found, result)

    def __call__(self, path: Path, hook: StageHook | None = None) -> bytes:
        from powerseg.runtime.writers import dumps_json, embeddings_npz, scores_npz

        if self.task.command == "scores":
            return npz_bytes(scores_npz(self.model(path, activations=False, hook=hook)))
        if self.task.command == "embed":
            return npz_bytes(embeddings_npz([(uri_of(path), self.model.embed(path, hook=hook))]))
        rttm, document = self.records(path, hook)
        text = "".join(rttm) if self.task.format == "rttm" else dumps_json(document)
        return text.encode("utf-8")


def diarization_records(uri: str, result, exclusive: bool = False) -> tuple[list[str], dict]:
    """(RTTM lines, JSON document) of a diarization, as ``powerseg diarize`` writes them."""
    from powerseg.runtime.writers import diarization_json, rttm_lines

    found = result.exclusive() if exclusive else result.turns()
    return rttm_lines(uri, found), diarization_json(uri, found, result, exclusive)


def write_bytes(target: Path, data: bytes) -> None:
    """Whole or not at all: a temporary file beside ``target``, renamed when complete."""
    with atomic_output(target, binary=True) as f:
        f.write(data)


@dataclass
class Summary:
    done: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)

    def line(self) -> str:
        return (f"powerseg: {len(self.done)} done, {len(self.skipped)} skipped (output exists), "
                f"{len(self.failed)} failed")

    def json(self) -> str:
        """``_powerseg_summary.json``, the same from a local run and from a Ray run."""
        return json.dumps({
            "summary": self.line(),
            "done": sorted(str(p) for p in self.done),
            "skipped": sorted(str(p) for p in self.skipped),
            "failed": [{"input": str(p), "error": why} for p, why in sorted(self.failed)],
        }, indent=1) + "\n"


SUMMARY_NAME = "_powerseg_summary.json"  # what a batch run did, beside its outputs


class Interrupted(KeyboardInterrupt):
    """A batch stopped by Ctrl-C (or SIGTERM): the work in progress abandoned, its temporary
    output removed, the finished outputs kept; ``summary`` says what was finished."""

    def __init__(self, summary: Summary, total: int):
        super().__init__()
        self.summary, self.total = summary, total

    def line(self) -> str:
        s = self.summary
        left = self.total - len(s.done) - len(s.skipped) - len(s.failed)
        failed = f", {len(s.failed)} failed" if s.failed else ""
        return (f"powerseg: interrupted: {len(s.done) + len(s.skipped)} done{failed}, {left} not "
                "started; rerun the same command to resume")


# Files shorter than this show only the file counter: their progress would flash by.
PROGRESS_MIN_SECONDS = 5.0
REDRAW_SECONDS = 0.2  # at most five redraws a second


class Progress:
    """One self-rewriting status line on a terminal (silent when stderr is a file or pipe):
    the file counter and, for a long file, seconds of audio done, rate and time left.
    ``message`` prints a line (an error, a warning) on a line of its own above it."""

    def __init__(self, total: int, enabled: bool | None = None):
        self.total, self.count = total, 0
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.lock = threading.RLock()
        self.shown = ""  # what the status line shows now
        self.drawn = 0.0  # when a hook's progress was last drawn
        self.running: dict[Path, tuple[float, float, float | None]] = {}  # started, done, total

    def _draw(self, text: str) -> None:
        if self.enabled:
            sys.stderr.write(f"\r\x1b[K{text}")
            sys.stderr.flush()
            self.shown = text

    def _status(self) -> str:
        text = f"[{self.count}/{self.total}]"
        if not self.running:
            return text
        path, (started, done, length) = next(reversed(self.running.items()))
        text += f" {path.name[-50:]}"
        if length and length >= PROGRESS_MIN_SECONDS and done > 0:
            elapsed = time.monotonic() - started
            rate = done / elapsed if elapsed > 0 else 0.0
            left = (length - done) / rate if rate > 0 else 0.0
            text += (f" {done:.0f}/{length:.0f} s, {rate:.1f}x real time, "
                     f"{_clock(left)} left")
        if len(self.running) > 1:
            text += f" (+{len(self.running) - 1} running)"
        return text

    def start(self, path: Path) -> None:
        with self.lock:
            self.running[path] = (time.monotonic(), 0.0, None)
            self._draw(self._status())

    def update(self, path: Path, payload: dict) -> None:
        """A stage hook's payload for ``path``: {"seconds": done, "total": of the file}."""
        with self.lock:
            if path in self.running and "seconds" in payload:
                started, _, length = self.running[path]
                self.running[path] = (started, float(payload["seconds"]),
                                      payload.get("total") or length)
                if time.monotonic() - self.drawn >= REDRAW_SECONDS:
                    self.drawn = time.monotonic()
                    self._draw(self._status())

    def step(self, path: Path) -> None:
        with self.lock:
            self.count += 1
            self.running.pop(path, None)
            self._draw(self._status())

    def message(self, text: str) -> None:
        """``text`` on a line of its own, the status line redrawn under it."""
        with self.lock:
            if self.enabled and self.shown:
                sys.stderr.write("\r\x1b[K")
            sys.stderr.write(text.rstrip("\n") + "\n")
            if self.enabled and self.shown:
                sys.stderr.write(self.shown)
            sys.stderr.flush()

    def close(self) -> None:
        """Leave the cursor at the start of a fresh line."""
        with self.lock:
            if self.enabled and self.shown:
                sys.stderr.write("\n")
                sys.stderr.flush()
            self.shown = ""


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{seconds:02d}" if minutes >= 60 else \
        f"{minutes}:{seconds:02d}"


def output_paths(files: list[Path], output_dir: Path, suffix: str) -> dict[Path, Path]:
    names: dict[str, Path] = {}
    for path in files:
        name = uri_of(path) + suffix
        if name in names and names[name] != path:
            raise OptionError(f"{path} and {names[name]} would both write {output_dir / name}; "
                              "rename one or process them separately")
        names[name] = path
    return {path: output_dir / name for name, path in names.items()}


Work = Callable[[Path, Path, Callable[[str, dict], None]], None]


def run(files: list[Path], output_dir: Path, suffix: str, work: Work, jobs: int = 1,
        overwrite: bool = False, report: Callable[[Path, PowersegError], None] | None = None,
        progress: Progress | None = None) -> Summary:
    """``work(input, output, hook)`` for each file, ``jobs`` at a time; a failure skips only
    that file. ``hook`` is the stage hook to give the pipeline: it shows the file's progress
    and stops the work once the run is interrupted.

    Ctrl-C (KeyboardInterrupt) stops the files in progress at their next round of windows,
    starts no other, and raises ``Interrupted``: finished outputs stay, unfinished ones leave
    nothing (outputs are renamed into place only when complete)."""
    targets = output_paths(files, output_dir, suffix)
    if not targets:
        raise AudioNotFoundError("no input files")
    check_summary_name(targets.values())
    summary = Summary()
    progress = progress or Progress(len(targets))
    stop = threading.Event()

    def one(path: Path) -> None:
        if stop.is_set():
            return
        target = targets[path]
        if target.exists() and not overwrite:
            summary.skipped.append(path)
            progress.step(path)
            return

        def hook(stage: str, payload: dict) -> None:
            if stop.is_set():
                raise KeyboardInterrupt
            progress.update(path, payload)

        progress.start(path)
        try:
            work(path, target, hook)
            summary.done.append(path)
        except PowersegError as error:
            summary.failed.append((path, str(error)))
            if report:
                report(path, error)
        finally:
            progress.step(path)

    pool = ThreadPoolExecutor(max_workers=jobs)
    try:
        for future in [pool.submit(one, path) for path in targets]:
            future.result()  # waits in the main thread, where Ctrl-C arrives
    except KeyboardInterrupt:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)  # the running files stop at their hook
        progress.close()
        raise Interrupted(summary, len(targets)) from None
    finally:
        pool.shutdown(wait=True)
    progress.close()
    with atomic_output(output_dir / SUMMARY_NAME) as out:
        out.write(summary.json())
    return summary


def check_summary_name(targets) -> None:
    """No input may write over the run's summary."""
    if any(Path(target).name == SUMMARY_NAME for target in targets):
        raise OptionError(f"an input would write {SUMMARY_NAME}, the run's summary; rename it")
