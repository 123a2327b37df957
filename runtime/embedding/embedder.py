"""``Embedder``: speaker embeddings (CAM++) of whole utterances, or of masked 10 s chunks as
pyannote's diarization pipeline asks for them."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import onnxruntime as ort

from powerseg.errors import AudioError, ModelError, OptionError
from powerseg.models import SPEAKER_EMBEDDING

from .. import contracts
from ..audio import ACCEPTED, audio_input, check_finite, load_audio, prepare
from ..options import Check, integer, keywords_or_options, options_repr, validate
from ..session import OnnxSession
from .fbank import FbankOptions, features

MASK_THRESHOLD = 0.5  # a fbank frame is kept where its (nearest) mask frame is above this


@dataclass(frozen=True)
class EmbeddingSpec:
    """What a speaker-embedding model takes and gives, read from its ONNX metadata."""

    fbank: FbankOptions
    embedding_dim: int
    min_frames: int  # fewer fbank frames give no embedding (NaN)
    metadata: dict[str, str]

    @property
    def sample_rate(self) -> int:
        return self.fbank.sample_rate

    @classmethod
    def from_metadata(cls, props: dict[str, str], source: str) -> EmbeddingSpec:
        missing = [key for key in ("embedding_dim", "min_frames") if key not in props]
        if missing:
            raise ModelError(f"{source}: ONNX metadata lacks {', '.join(missing)}; not a powerseg "
                             "speaker-embedding export (re-export it with `powerseg export`)")
        fbank = FbankOptions.from_metadata(props, source)
        try:
            dim, least = int(props["embedding_dim"]), int(props["min_frames"])
        except ValueError as error:
            raise ModelError(f"{source}: malformed ONNX metadata ({error}); re-export the model "
                             "with `powerseg export`") from None
        if dim < 1 or least < 1:
            raise ModelError(f"{source}: metadata embedding_dim {dim} / min_frames {least} must be "
                             "positive; re-export the model with `powerseg export`")
        return cls(fbank, dim, least, dict(props))


class EmbeddingModel(OnnxSession):
    """onnxruntime CAM++: (batch, frames, mel bins) features -> (batch, embedding_dim)."""

    KIND = SPEAKER_EMBEDDING
    # ALL: its NCHWc layout pass makes CAM++'s convolutions about 20% faster (measured at
    # 400 frames on one core); outputs stay within the export's torch tolerance (tested).
    OPTIMIZATION = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    MEMORY_PATTERN = False  # one pattern per distinct frame count would pile up (measured)

    def __init__(self, model: str | os.PathLike = "campplus", threads: int | None = None,
                 providers: str | list = "auto"):
        super().__init__(model, threads, providers)
        self.spec = EmbeddingSpec.from_metadata(self.metadata, str(self.path))
        self._check_io()

    def _check_io(self) -> None:
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelError(f"{self.path}: expected one input and one output")
        shape, out, spec = inputs[0].shape, outputs[0].shape, self.spec
        if len(shape) != 3 or shape[2] != spec.fbank.num_mel_bins or isinstance(shape[1], int):
            raise ModelError(f"{self.path}: input shape {shape} is not (batch, frames, "
                             f"{spec.fbank.num_mel_bins}) with any number of frames, as its "
                             "metadata says; re-export it with `powerseg export`")
        if len(out) != 2 or out[1] != spec.embedding_dim:
            raise ModelError(f"{self.path}: output shape {out} is not (batch, "
                             f"{spec.embedding_dim}) as its metadata says; re-export it with "
                             "`powerseg export`")
        if inputs[0].type != "tensor(float)":
            raise ModelError(f"{self.path}: input type {inputs[0].type}, expected float32")
        self._input = inputs[0].name

    def _smallest_feed(self) -> dict[str, np.ndarray]:
        frames = (1, self.spec.min_frames, self.spec.fbank.num_mel_bins)
        return {self._input: np.zeros(frames, np.float32)}

    def __call__(self, feats: np.ndarray) -> np.ndarray:
        """(batch, frames >= min_frames, mel bins) float32 -> (batch, embedding_dim) float32."""
        out = self.run({self._input: np.ascontiguousarray(feats, dtype=np.float32)})
        if not np.isfinite(out).all():
            raise ModelError(f"{self.path}: the model produced NaN or Inf from finite features; "
                             "its weights are corrupt: re-download it or re-export it with "
                             "`powerseg export`")
        return out


@dataclass(frozen=True)
class EmbedderOptions:
    """Everything that decides an embedding; returned with it."""

    model: str = "campplus"  # a shipped name or the path of an .onnx file
    threads: int | None = None  # parallel single-threaded runs on CPU; None = one per core
    providers: str | tuple = "auto"  # "auto", "cpu", "cuda" or onnxruntime provider list

    CHECKS: ClassVar[dict[str, Check]] = {"threads": integer(none=True)}

    def __post_init__(self) -> None:
        validate(self, self.CHECKS)


@dataclass(frozen=True)
class Embedding:
    """One utterance's embedding: NaN when it has fewer than ``min_frames`` fbank frames."""

    vector: np.ndarray  # (embedding_dim,) float32, not normalised
    num_frames: int  # fbank frames the model saw
    duration: float  # seconds of audio
    options: EmbedderOptions
    provider: str
    metadata: dict = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        norm = float(np.linalg.norm(self.vector))
        return (f"Embedding({self.vector.shape[0]} values, norm {norm:.4g}, {self.num_frames} "
                f"fbank frames, {self.duration:.3f} s, model={self.options.model!r})")


@dataclass(frozen=True)
class Embeddings:
    """Embeddings of masked chunks; NaN rows where fewer than ``min_frames`` frames were kept."""

    vectors: np.ndarray  # masks.shape[:-1] + (embedding_dim,) float32
    num_frames: np.ndarray  # masks.shape[:-1] int32: fbank frames gathered per (chunk, mask)
    options: EmbedderOptions
    provider: str
    metadata: dict = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        valid = int(np.isfinite(self.vectors).all(axis=-1).sum())
        return (f"Embeddings(shape={self.vectors.shape}, {valid} of "
                f"{int(np.prod(self.vectors.shape[:-1]))} valid, model={self.options.model!r})")


class Embedder:
    """Speaker embeddings with onnxruntime, no torch. One instance can serve many threads."""

    @keywords_or_options(EmbedderOptions)
    def __init__(self, model: str | os.PathLike = "campplus", threads: int | None = None,
                 providers: str | list | tuple = "auto", options: EmbedderOptions | None = None):
        self._start(options or EmbedderOptions(model=model, threads=threads, providers=providers))

    @classmethod
    def with_model(cls, model: contracts.EmbeddingModel,
                   options: EmbedderOptions | None = None) -> Embedder:
        """An Embedder on a model object (``contracts.EmbeddingModel``: a torch rebuild)
        instead of an ONNX file; ``options.model`` only names it."""
        contracts.check(model, contracts.EmbeddingModel, "Embedder.with_model")
        embedder = cls.__new__(cls)
        embedder._start(options or EmbedderOptions(), model)
        return embedder

    def _start(self, options: EmbedderOptions,
               model: contracts.EmbeddingModel | None = None) -> None:
        self.options = options
        self.model = model if model is not None else \
            EmbeddingModel(options.model, options.threads, options.providers)
        self.spec = self.model.spec

    def __repr__(self) -> str:
        return options_repr(self, f"provider={self.provider!r}")

    @property
    def provider(self) -> str:
        return self.model.provider

    @property
    def dimension(self) -> int:
        return self.spec.embedding_dim

    def _embed(self, feats: np.ndarray) -> np.ndarray:
        if len(feats) < self.spec.min_frames:
            return np.full(self.spec.embedding_dim, np.nan, np.float32)
        return self.model(feats[None])[0]

    def embed(self, audio: str | os.PathLike | np.ndarray, sample_rate: int | None = None,
              hook: contracts.StageHook | None = None) -> Embedding:
        """A whole utterance: a file, or an array with its ``sample_rate`` (resampled to 16 kHz).

        ``hook(stage, payload)`` is called after reading ("audio"), the fbank ("fbank") and the
        model run ("embedding") with {"seconds", "total"} of audio; raising in it stops there."""
        rate = self.spec.sample_rate
        audio, sample_rate = audio_input(audio, sample_rate)
        if isinstance(audio, (str, os.PathLike)):
            if sample_rate is not None:
                raise OptionError("sample_rate is only for arrays: files carry their own")
            samples = load_audio(Path(audio), rate)
        else:
            if sample_rate is None:
                raise OptionError(f"sample_rate is required with an array input (audio: {ACCEPTED})")
            samples = prepare(audio, sample_rate, rate)
        seconds = len(samples) / rate
        done = (lambda stage: None) if hook is None else \
            (lambda stage: hook(stage, {"seconds": seconds, "total": seconds}))
        done("audio")
        feats = features(samples, self.spec.fbank)
        done("fbank")
        vector = self._embed(feats)
        done("embedding")
        return Embedding(vector, len(feats), seconds, self.options, self.provider,
                         dict(self.spec.metadata))

    def embed_chunks(self, chunks: np.ndarray, masks: np.ndarray) -> Embeddings:
        """(n, samples) chunks and (n, frames) or (n, speakers, frames) masks on the chunks'
        segmentation frames -> (n, 192) or (n, speakers, 192) embeddings of the frames each
        mask keeps. The geometry is the segmentation's (segmentation-3.0: 160000 samples, the
        last chunk zero-padded, and 589 frames), read from the inputs' shapes.

        As pyannote's pipeline embeds a (chunk, speaker) pair: fbank of the whole chunk,
        mean-normalised over all its frames, then only the frames whose nearest mask frame is
        above 0.5 go to the model (a crop, so the model's context sees only that speaker).
        The fbank is computed once per distinct chunk (equal consecutive rows share it); each
        chunk with its masks is one task, one per core at a time, so memory holds a few chunks'
        features whatever ``n`` is.
        """
        chunks, masks = self._check_chunks(chunks, masks)
        nearest = mask_frames(masks.shape[-1], self.spec.fbank.num_frames(chunks.shape[1]))
        kept = masks.reshape(-1, masks.shape[-1])[:, nearest] > MASK_THRESHOLD
        if masks.ndim == 3:  # (chunk whose fbank to compute, the rows of ``kept`` that use it)
            speakers = masks.shape[1]
            groups = [(c, list(range(c * speakers, (c + 1) * speakers))) for c in range(len(chunks))]
        else:
            groups = _runs(chunks)

        def work(group: tuple[int, list[int]]) -> list[np.ndarray]:
            feats = features(chunks[group[0]], self.spec.fbank)
            return [self._embed(feats[kept[pair]]) for pair in group[1]]

        vectors = [v for part in self.model.map(work, groups) for v in part]
        dim = self.spec.embedding_dim
        out = np.stack(vectors) if vectors else np.zeros((0, dim), np.float32)
        return Embeddings(out.reshape(masks.shape[:-1] + (dim,)),
                          kept.sum(axis=1).astype(np.int32).reshape(masks.shape[:-1]),
                          self.options, self.provider, dict(self.spec.metadata))

    def _check_chunks(self, chunks, masks) -> tuple[np.ndarray, np.ndarray]:
        chunks, masks = np.asarray(chunks), np.asarray(masks)
        if not np.issubdtype(chunks.dtype, np.floating):
            raise AudioError(f"chunks: expected float samples in [-1, 1], got dtype {chunks.dtype}")
        if chunks.ndim != 2 or chunks.shape[1] < self.spec.fbank.frame_length_samples:
            raise AudioError(f"chunks: expected shape (n, samples), at least one fbank frame "
                             f"({self.spec.fbank.frame_length_samples} samples) each, got "
                             f"{chunks.shape}")
        if not (np.issubdtype(masks.dtype, np.floating) or np.issubdtype(masks.dtype, np.integer)
                or masks.dtype == bool):
            raise OptionError(f"masks: expected numbers or booleans, got dtype {masks.dtype}")
        if masks.ndim not in (2, 3) or masks.shape[-1] < 1:
            raise OptionError(f"masks: expected shape (n, frames) or (n, speakers, frames), got "
                              f"{masks.shape}")
        if len(masks) != len(chunks):
            raise OptionError(f"masks: {len(masks)} masks for {len(chunks)} chunks; give one "
                              "(or one per speaker) for each chunk")
        for index, chunk in enumerate(chunks):
            check_finite(chunk, self.spec.sample_rate, f"chunks[{index}]")
        if masks.dtype != bool and not np.isfinite(masks).all():
            raise OptionError("masks: NaN or infinite values; masks are 0/1 or activations in [0, 1]")
        return chunks.astype(np.float32, copy=False), masks


@functools.lru_cache(maxsize=8)
def mask_frames(frames: int, num_fbank: int) -> np.ndarray:
    """(num_fbank,) index of the mask frame each fbank frame takes: torch's nearest
    interpolation, as pyannote resizes the masks, in its float32 arithmetic
    (floor(j * (frames / num_fbank)), capped), so any geometry rounds as torch does."""
    scale = np.float32(frames) / np.float32(num_fbank)
    index = np.floor(np.arange(num_fbank, dtype=np.float32) * scale).astype(np.int64)
    index = np.minimum(index, frames - 1)
    index.flags.writeable = False  # shared by every call with this geometry
    return index


def _runs(chunks: np.ndarray) -> list[tuple[int, list[int]]]:
    """Runs of equal consecutive rows: (first row, every row of the run)."""
    runs: list[tuple[int, list[int]]] = []
    for i in range(len(chunks)):
        if runs and np.array_equal(chunks[i], chunks[runs[-1][0]]):
            runs[-1][1].append(i)
        else:
            runs.append((i, [i]))
    return runs
