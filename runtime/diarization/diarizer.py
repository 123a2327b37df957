"""``Diarizer``: who spoke when, as pyannote.audio's ``SpeakerDiarization`` pipeline computes it.

Stages (pyannote.audio 4.0.7, agglomerative clustering): segmentation of 10 s chunks with
hard powerset decoding; per-frame speaker count; one speaker embedding per (chunk, local
speaker), without its overlapped frames when enough clean ones remain; clustering
(runtime/diarization/clustering.py); reconstruction of one timeline (runtime/diarization/reconstruct.py). The
embeddings are computed round by round as the segmentation windows run, so a recording is
read in blocks and never held whole.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, ClassVar, NamedTuple

import numpy as np

from powerseg.errors import OptionError

from ..audio import audio_input
from ..contracts import EmbeddingModel, StageHook, WindowModel
from ..framing import FrameGrid
from ..embedding.embedder import Embedder, EmbedderOptions
from ..options import Check, integer, keywords_or_options, number, options_repr, validate
from ..segmentation.segmenter import Segmentation, Segmenter, SegmenterOptions
from ..session import OnnxSession, trim_heap
from .clustering import Clusters, cluster
from .presets import PRESETS, PYANNOTE_MIN_CLUSTER_SIZE
from .reconstruct import column_turns, reconstruct, speaker_count, speaker_labels
from .voices import VoiceBank, VoiceMatch, name_speakers, voice_bank

if TYPE_CHECKING:
    from .live import DiarizationStream

# Centroid-linkage distance between unit vectors (cosine similarity 0.63): the lowest total DER
# over the shared test sets for CAM++ in pyannote's own threshold search (0.84 ties; pyannote 3.1
# used 0.7046 with WeSpeaker).
CAMPPLUS_THRESHOLD = 0.86


class Turn(NamedTuple):
    """One speaker's turn, seconds; ``label`` and ``duration`` as a Region has them."""

    start: float
    end: float
    speaker: str

    @property
    def label(self) -> str:
        return self.speaker

    @property
    def duration(self) -> float:
        return self.end - self.start


def speaker_bounds(num_speakers: int | None = None, min_speakers: int | None = None,
                   max_speakers: int | None = None) -> tuple[int, int | None]:
    """(fewest, most) speakers asked for (most None: no bound), as pyannote's
    ``set_num_speakers``; an OptionError for anything but positive integers in order."""
    for name, value in (("num_speakers", num_speakers), ("min_speakers", min_speakers),
                        ("max_speakers", max_speakers)):
        integer(none=True)(name, value)
    if num_speakers is not None:
        for name, value in (("min_speakers", min_speakers), ("max_speakers", max_speakers)):
            if value is not None and (value > num_speakers if name == "min_speakers"
                                      else value < num_speakers):
                raise OptionError(f"num_speakers ({num_speakers}) and {name} ({value}) "
                                  "disagree; give one or the other")
    low, high = num_speakers or min_speakers or 1, num_speakers or max_speakers
    if high is not None and low > high:
        raise OptionError(f"min_speakers ({low}) must not exceed max_speakers ({high})")
    return low, high


# What ``Diarizer.recluster`` may change: the settings used after the models have run. The
# result's frames must be the Diarizer's (the same segmentation model and step), and its
# embeddings the same model's.
RECLUSTER = ("threshold", "min_cluster_size", "min_duration_off")
LOADED = ("segmentation", "embedding", "step")


@dataclass(frozen=True)
class DiarizerOptions:
    """Everything that decides a diarization; returned with it."""

    segmentation: str = "fp32"  # segmentation model: "fp32", "int8" or an .onnx path
    embedding: str = "campplus"  # speaker-embedding model: "campplus" or an .onnx path
    step: float = 1.0  # seconds between 10 s chunks (pyannote: 10 % of the chunk)
    threshold: float | None = None  # clustering distance threshold; None = CAMPPLUS_THRESHOLD
    min_cluster_size: int = PYANNOTE_MIN_CLUSTER_SIZE  # smaller clusters join the closest large one
    exclude_overlap: bool = True  # embed a speaker's frames without overlapped speech
    min_duration_off: float = 0.0  # fill one speaker's gaps shorter than this (seconds)
    batch_size: int = 2  # segmentation windows per model call
    threads: int | None = None  # parallel single-threaded model runs; None = one per core
    providers: str | tuple = "auto"  # "auto", "cpu", "cuda" or onnxruntime provider list
    shared_front: bool = True  # segmentation on its shared front-end pair where it applies

    CHECKS: ClassVar[dict[str, Check]] = {
        **SegmenterOptions.CHECKS, "threshold": number(none=True), "min_cluster_size": integer(),
        "min_duration_off": number(positive=False, unit="seconds")}

    def __post_init__(self) -> None:
        validate(self, self.CHECKS)

    @classmethod
    def preset(cls, name: str, **overrides) -> DiarizerOptions:
        """The options of a named preset (``PRESETS``), with ``overrides`` on top."""
        if name not in PRESETS:
            raise OptionError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})

    @property
    def clustering_threshold(self) -> float:
        return CAMPPLUS_THRESHOLD if self.threshold is None else float(self.threshold)


@dataclass(frozen=True)
class Diarization:
    """Speaker turns on the segmentation's frame grid, with the stages that made them."""

    speakers: tuple[str, ...]  # labels, SPEAKER_00, SPEAKER_01, ... (pyannote's order)
    centroids: np.ndarray  # (speakers, dimension) float64: mean embedding of each speaker
    count: np.ndarray  # (frames,) uint8: speakers active per frame (capped at max_speakers)
    discrete: np.ndarray  # (frames, columns) uint8: which column is on at each frame
    exclusive_discrete: np.ndarray  # the same with at most one speaker per frame
    columns: tuple[int, ...]  # columns[i] of discrete is speakers[i]
    embeddings: np.ndarray  # (chunks, local speakers, dimension) float32, NaN where skipped
    clusters: Clusters | None  # None when no one speaks
    segmentation: Segmentation  # hard per-chunk activations included
    options: DiarizerOptions
    num_speakers: int | None  # what was asked for: num_speakers, min_speakers, max_speakers
    min_speakers: int | None
    max_speakers: int | None
    _turns: tuple[Turn, ...] = field(repr=False, default=())
    _exclusive: tuple[Turn, ...] = field(repr=False, default=())
    embedding_metadata: dict = field(default_factory=dict, repr=False)  # the embedding model's
    embedding_provider: str = ""  # where the embedding model ran (``provider``: the segmentation)
    voice_matches: tuple[VoiceMatch, ...] = ()  # per speaker, with a VoiceBank (diarization/voices.py)

    def __repr__(self) -> str:
        chunks = self.embeddings.shape[0]
        return (f"Diarization({self.duration:.3f} s, {len(self.speakers)} speakers "
                f"{list(self.speakers)}, {len(self._turns)} turns, {chunks} chunks, "
                f"threshold={self.options.clustering_threshold:g}, "
                f"segmentation={self.options.segmentation!r}, "
                f"embedding={self.options.embedding!r}, provider={self.provider!r})")

    def to_rttm(self, uri: str = "audio", exclusive: bool = False) -> str:
        """The RTTM ``powerseg diarize`` writes (``--exclusive``: one speaker at a time)."""
        from ..writers import rttm_lines

        return "".join(rttm_lines(uri, self.exclusive() if exclusive else self.turns()))

    def to_json(self, uri: str = "audio", exclusive: bool = False) -> str:
        """The JSON ``powerseg diarize -o X.json`` writes."""
        from ..writers import diarization_json, dumps_json

        turns = self.exclusive() if exclusive else self.turns()
        return dumps_json(diarization_json(uri, turns, self, exclusive))

    @property
    def duration(self) -> float:
        return self.segmentation.duration

    @property
    def provider(self) -> str:
        return self.segmentation.provider

    @property
    def grid(self) -> FrameGrid:
        return self.segmentation.grid

    def turns(self) -> list[Turn]:
        """Speaker turns sorted by start (overlapped speech has two turns at once)."""
        return list(self._turns)

    def exclusive(self) -> list[Turn]:
        """At most one speaker at a time (pyannote 4's ``exclusive_speaker_diarization``)."""
        return list(self._exclusive)


class Rounds:
    """The stream's window hook for diarization: per round of windows, the hard activations
    (0/1, kept as bits: a live hour's are 0.8 MB) and the (chunk, local speaker) embeddings,
    kept for clustering.

    With ``min_clean_frames``, a speaker's overlap-free mask is used when it keeps more
    frames than that (pyannote's ``embedding_exclude_overlap``), else the full mask.
    ``then(binarized, embeddings)`` sees each round as it comes (a live stream's clustering).
    """

    def __init__(self, embedder: Embedder, min_clean_frames: int | None,
                 then: Callable[[np.ndarray, np.ndarray], None] | None = None):
        self.embedder, self.min_clean_frames, self.then = embedder, min_clean_frames, then
        self.binarized: list[np.ndarray] = []  # (windows, frames / 8, speakers) packed bits
        self.vectors: list[np.ndarray] = []

    def __call__(self, windows: np.ndarray, active: np.ndarray) -> None:
        masks = active.transpose(0, 2, 1)  # (windows, speakers, frames)
        if self.min_clean_frames is not None:
            clean = masks * (np.sum(active, axis=2) < 2)[:, None, :]
            enough = clean.sum(axis=2) > self.min_clean_frames
            masks = np.where(enough[..., None], clean, masks)
        binarized = active.astype(np.uint8)
        vectors = self.embedder.embed_chunks(windows, masks).vectors
        self.binarized.append(np.packbits(binarized, axis=1))
        self.vectors.append(vectors)
        if self.then is not None:
            self.then(binarized, vectors)

    def arrays(self, frames: int, speakers: int) -> tuple[np.ndarray, np.ndarray]:
        """(binarized, embeddings) of all rounds in one array each; the rounds' own let go."""
        if not self.vectors:
            return (np.zeros((0, frames, speakers), np.uint8),
                    np.zeros((0, speakers, self.embedder.dimension), np.float32))
        out = (np.unpackbits(np.concatenate(self.binarized), axis=1, count=frames),
               np.concatenate(self.vectors))
        self.binarized.clear()
        self.vectors.clear()
        return out


class Diarizer:
    """pyannote's speaker diarization (segmentation-3.0 + CAM++) with onnxruntime, no torch.

    Holds no per-call state: one instance can serve many threads at once.
    """

    @keywords_or_options(DiarizerOptions)
    def __init__(self, segmentation: str | os.PathLike = "fp32",
                 embedding: str | os.PathLike = "campplus", step: float = 1.0,
                 threshold: float | None = None, min_cluster_size: int = 12,
                 exclude_overlap: bool = True, min_duration_off: float = 0.0,
                 batch_size: int = 2, threads: int | None = None,
                 providers: str | list | tuple = "auto", shared_front: bool = True,
                 options: DiarizerOptions | None = None,
                 voices: VoiceBank | str | os.PathLike | None = None,
                 voice_threshold: float | None = None):
        self.options = options or DiarizerOptions(
            segmentation=segmentation, embedding=embedding, step=step, threshold=threshold,
            min_cluster_size=min_cluster_size, exclude_overlap=exclude_overlap,
            min_duration_off=min_duration_off, batch_size=batch_size, threads=threads,
            providers=providers, shared_front=shared_front)
        self._start(Segmenter(options=self._segmenter_options()),
                    Embedder(options=self._embedder_options()), voices, voice_threshold)

    @classmethod
    def with_models(cls, segmentation: WindowModel, embedding: EmbeddingModel,
                    options: DiarizerOptions | None = None,
                    voices: VoiceBank | str | os.PathLike | None = None,
                    voice_threshold: float | None = None) -> Diarizer:
        """A Diarizer on model objects (``runtime/contracts.py``: the torch rebuilds the
        benchmarks time) instead of ONNX files; the options' model names only name them."""
        diarizer = cls.__new__(cls)
        diarizer.options = options or DiarizerOptions()
        diarizer._start(Segmenter.with_model(segmentation, diarizer._segmenter_options()),
                        Embedder.with_model(embedding, diarizer._embedder_options()),
                        voices, voice_threshold)
        return diarizer

    def _segmenter_options(self) -> SegmenterOptions:
        o = self.options
        return SegmenterOptions(model=o.segmentation, step=o.step, batch_size=o.batch_size,
                                threads=o.threads, providers=o.providers, soft=False,
                                shared_front=o.shared_front)

    def _embedder_options(self) -> EmbedderOptions:
        o = self.options
        return EmbedderOptions(model=o.embedding, threads=o.threads, providers=o.providers)

    def _start(self, segmenter: Segmenter, embedder: Embedder,
               voices: VoiceBank | str | os.PathLike | None,
               voice_threshold: float | None) -> None:
        self.segmenter, self.embedder = segmenter, embedder
        # speakers matching an enrolled voice take its name (runtime/diarization/voices.py)
        self.voices, self.voice_threshold = voice_bank(voices, voice_threshold, self.embedder)

    def _min_clean_frames(self) -> int | None:
        """Segmentation frames of the shortest input the embedding model can take."""
        if not self.options.exclude_overlap:
            return None
        spec, fbank = self.segmenter.spec, self.embedder.spec.fbank
        min_samples = fbank.frame_length_samples + \
            (self.embedder.spec.min_frames - 1) * fbank.frame_shift_samples
        return math.ceil(spec.num_frames * min_samples / spec.window_samples)

    def _release_memory(self) -> None:
        """Both models' arenas, and the C heap's free pages, back to the system before
        clustering: with the clustering's arrays on top, they made the peak
        (benchmarks/README.md)."""
        for model in (self.segmenter.model, self.embedder.model):
            if isinstance(model, OnnxSession):
                model.release_memory()
        trim_heap()

    def __repr__(self) -> str:
        return options_repr(self, f"provider={self.segmenter.provider!r}, "
                            f"pair={self.segmenter.shared_front}")

    def rounds(self, then: Callable[[np.ndarray, np.ndarray], None] | None = None) -> Rounds:
        """A window hook that embeds each round of windows (``Segmenter``'s ``on_windows``)."""
        return Rounds(self.embedder, self._min_clean_frames(), then)

    def stream(self, latency: float = 5.0, sample_rate: int | None = None,
               num_speakers: int | None = None, min_speakers: int | None = None,
               max_speakers: int | None = None) -> DiarizationStream:
        """Live diarization: ``push`` samples as they arrive, get each moment's speaker
        ``latency`` seconds (one step to one window) later; ``flush`` ends in what this
        Diarizer gives for the same audio and speaker bounds (runtime/diarization/live.py)."""
        from .live import DiarizationStream

        return DiarizationStream(self, latency, sample_rate, num_speakers, min_speakers,
                                 max_speakers)

    def __call__(self, audio: str | os.PathLike | np.ndarray, sample_rate: int | None = None,
                 num_speakers: int | None = None, min_speakers: int | None = None,
                 max_speakers: int | None = None, hook: StageHook | None = None) -> Diarization:
        """Diarize a file (read in blocks) or an array (``sample_rate`` required).

        ``num_speakers`` fixes the number of speakers; ``min_speakers``/``max_speakers``
        bound it (pyannote walks the dendrogram to reach the bounds when it can; bounds the
        audio cannot meet give the closest result and a warning). ``hook(stage, payload)``
        is called after each round of windows and each later stage, with {"seconds",
        "total"} of audio; raising in it stops the work at once.
        """
        speaker_bounds(num_speakers, min_speakers, max_speakers)  # before any audio is read
        audio, sample_rate = audio_input(audio, sample_rate)
        rounds = self.rounds()
        segmentation = self.segmenter(audio, sample_rate=sample_rate, activations=False,
                                      on_windows=rounds, hook=hook)
        source = os.fspath(audio) if isinstance(audio, (str, os.PathLike)) else "array"
        return self.finish(segmentation, rounds, num_speakers, min_speakers, max_speakers,
                           hook=hook, source=source)

    def finish(self, segmentation: Segmentation, rounds: Rounds, num_speakers: int | None = None,
               min_speakers: int | None = None, max_speakers: int | None = None,
               hook: StageHook | None = None, source: str = "array") -> Diarization:
        """The stages after the windows (``_stages``), then the enrolled voices' names."""
        result = self._stages(segmentation, rounds, num_speakers, min_speakers, max_speakers,
                              hook, source)
        return name_speakers(result, self.voices, self.voice_threshold)

    def _stages(self, segmentation: Segmentation, rounds: Rounds, num_speakers: int | None = None,
                min_speakers: int | None = None, max_speakers: int | None = None,
                hook: StageHook | None = None, source: str = "array") -> Diarization:
        """The stages after the windows: speaker count, clustering, reconstruction, turns.

        ``segmentation`` and ``rounds`` are what the windows made (offline, or a live stream's
        at its flush), so both paths end in the same result. ``source`` names the audio in
        warnings.
        """
        spec = self.segmenter.spec
        binarized, embeddings = rounds.arrays(spec.num_frames, spec.num_speakers)
        segmentation = replace(segmentation, activations=binarized)
        self._release_memory()
        return self._cluster(segmentation, embeddings, self.options, num_speakers, min_speakers,
                             max_speakers, hook, source)

    def recluster(self, result: Diarization, num_speakers: int | None = None,
                  min_speakers: int | None = None, max_speakers: int | None = None,
                  hook: StageHook | None = None, **changes) -> Diarization:
        """``result`` clustered again with other per-call settings (``RECLUSTER``: threshold,
        min_cluster_size, min_duration_off) or speaker bounds, from its own segmentation and
        embeddings: no model runs, so a threshold sweep costs a clustering per value. The same
        settings give the same result; others give what a Diarizer with them gives."""
        fixed = {name: value for name, value in changes.items() if name not in RECLUSTER}
        if fixed:
            raise OptionError(f"{', '.join(fixed)}: fixed once the models have run; re-clustering "
                              f"changes only {', '.join(RECLUSTER)} and the speaker bounds")
        made = {f: getattr(result.options, f) for f in LOADED}
        if made != {f: getattr(self.options, f) for f in LOADED}:
            raise OptionError("this result was made with other models or windows "
                              f"({made}); re-cluster it with a Diarizer of the same ones")
        options = replace(result.options, **changes)
        again = self._cluster(result.segmentation, result.embeddings, options, num_speakers,
                              min_speakers, max_speakers, hook, "recluster")
        return name_speakers(again, self.voices, self.voice_threshold)

    def _cluster(self, segmentation: Segmentation, embeddings: np.ndarray,
                 options: DiarizerOptions, num_speakers: int | None, min_speakers: int | None,
                 max_speakers: int | None, hook: StageHook | None,
                 source: str) -> Diarization:
        """Speaker count, clustering, reconstruction and turns from the windows' binarized
        activations (``segmentation.activations``) and embeddings."""
        low, high = speaker_bounds(num_speakers, min_speakers, max_speakers)
        seconds = {"seconds": segmentation.duration, "total": segmentation.duration}
        done = (lambda stage: None) if hook is None else (lambda stage: hook(stage, seconds))
        binarized = segmentation.activations
        framing = self.segmenter.framing
        count = speaker_count(binarized, framing)
        done("speaker_counting")
        asked = dict(num_speakers=num_speakers, min_speakers=min_speakers,
                     max_speakers=max_speakers)
        if count.max(initial=0) == 0:  # no one speaks: nothing to cluster
            warnings.warn(f"{source}: no speaker found in {segmentation.duration:.3f} s of "
                          "audio; the diarization is empty", stacklevel=4)
            empty = np.zeros((len(count), 0), np.uint8)
            return Diarization((), np.zeros((0, self.embedder.dimension)), count, empty, empty,
                               (), embeddings, None, segmentation, options, **asked,
                               embedding_metadata=dict(self.embedder.spec.metadata),
                               embedding_provider=self.embedder.provider)
        if low == high:
            num_speakers = low
        clusters = cluster(embeddings, binarized, options.clustering_threshold,
                           options.min_cluster_size, num_speakers, min_speakers or low,
                           high)
        done("clustering")
        found = int(clusters.hard.max()) + 1
        if found < low or (high is not None and found > high):
            wanted = f"{low}" if low == high else f"from {low} to {high}" if high else \
                f"at least {low}"
            why = f"too few to make more clusters of min_cluster_size " \
                f"{options.min_cluster_size}" if found < low else "none of the " \
                "dendrogram's cuts gives fewer clusters"
            warnings.warn(f"{source}: {found} speaker clusters found where {wanted} "
                          f"{'was' if wanted == '1' else 'were'} asked for: the audio gives "
                          f"{len(clusters.train_chunks)} speaker embeddings to cluster, {why}; "
                          "the result is the closest one", stacklevel=4)
        if high is not None:  # at most ``high`` at once; uint8 holds any count a chunk makes
            count = np.minimum(count, min(high, np.iinfo(np.uint8).max)).astype(np.uint8)
        discrete = reconstruct(binarized, clusters.hard, count, framing)
        exclusive = reconstruct(binarized, clusters.hard, np.minimum(count, 1), framing)
        off = options.min_duration_off
        turns = column_turns(discrete, framing, off)
        labels = speaker_labels(turns)
        columns = tuple(labels)
        # a column past the clusters (count above them) is a speaker with a zero centroid
        centroids = np.pad(clusters.centroids,
                           ((0, max(0, discrete.shape[1] - len(clusters.centroids))), (0, 0)))
        done("discrete_diarization")
        return Diarization(
            tuple(labels.values()), centroids[list(columns)], count, discrete, exclusive,
            columns, embeddings, clusters, segmentation, options, **asked,
            _turns=tuple(Turn(s, e, labels[c]) for s, e, c in turns),
            _exclusive=tuple(Turn(s, e, labels[c]) for s, e, c in
                             column_turns(exclusive, framing, off)),
            embedding_metadata=dict(self.embedder.spec.metadata),
            embedding_provider=self.embedder.provider)
