"""Output files: RTTM, JSON and npz, each written whole or not at all."""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import IO, TYPE_CHECKING, Iterator

import numpy as np

from powerseg import __version__
from powerseg.errors import OutputError, PowersegError
from powerseg.models import SEGMENTATION_FRONT, model_sha256

from .binarize import Region
from .session import model_kind

if TYPE_CHECKING:
    from .diarization.diarizer import Diarization
    from .embedding.embedder import Embedding
    from .framing import FrameGrid
    from .segmentation.segmenter import Segmentation

JSON_SCHEMA_VERSION = 1


@contextmanager
def atomic_output(path: str | Path, binary: bool = False) -> Iterator[IO]:
    """Write to a temporary file beside ``path`` and rename it into place only on success."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path}: is a directory; give the output file's path")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError as error:
        raise OutputError(f"{path}: cannot create the output file ({error.strerror or error})"
                          ) from None
    try:
        with os.fdopen(fd, "wb" if binary else "w", encoding=None if binary else "utf-8") as f:
            yield f
        os.chmod(tmp, 0o666 & ~umask())  # open()'s mode, not mkstemp's 0600 (kept by the rename)
        os.replace(tmp, path)
    except OSError as error:  # disk full, or the rename refused: nothing is left behind
        os.unlink(tmp)
        if isinstance(error, PowersegError):  # e.g. an input that went missing meanwhile
            raise
        raise OutputError(f"{path}: cannot write the output file ({error.strerror or error}); "
                          "nothing was written") from None
    except BaseException:
        os.unlink(tmp)
        raise


def umask() -> int:
    """The process umask, read without changing it where the system says it (Linux), so no
    other thread's file is ever created under a wrong mask."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def uri_of(path: str | Path) -> str:
    """RTTM-safe recording name: the file stem, without spaces."""
    return Path(path).stem.replace(" ", "_") or "audio"


def rttm_lines(uri: str, regions: Iterable[Region]) -> list[str]:
    """NIST RTTM lines, as pyannote.core's ``Annotation.write_rttm`` writes them."""
    return [f"SPEAKER {uri} 1 {r.start:.3f} {r.duration:.3f} <NA> <NA> {r.label} <NA> <NA>\n"
            for r in regions]


def envelope(*metadata: dict) -> dict:
    """What every JSON output starts with: the schema, the powerseg version, and each model
    file the result came from (kind, name, variant, file name and sha256; a shared front-end
    pair's front as well), from the models' metadata the results carry."""
    models = []
    for props in metadata:
        entry = {"kind": model_kind(props), "model": props.get("model", ""),
                 "variant": props.get("variant", "")}
        if props.get("file"):
            entry.update(file=Path(props["file"]).name, sha256=model_sha256(props["file"]))
        models.append(entry)
        if "front_model" in props:
            front = json.loads(props["front_model"])
            models.append({"kind": SEGMENTATION_FRONT, "model": entry["model"],
                           "variant": entry["variant"], "file": front.get("file", ""),
                           "sha256": front.get("sha256", "")})
    return {"schema": JSON_SCHEMA_VERSION, "powerseg": __version__, "models": models}



def regions_json(uri: str, regions: list[Region], result: Segmentation) -> dict:
    return {
        **envelope(result.metadata),
        "uri": uri,
        "duration": result.duration,
        "regions": [{"start": round(r.start, 6), "end": round(r.end, 6), "label": r.label}
                    for r in regions],
        "options": _options(result),
        "provider": result.provider,
        "model": result.metadata.get("model", ""),
        "variant": result.metadata.get("variant", ""),
    }


def diarization_json(uri: str, turns: list, result: Diarization,
                     exclusive: bool = False) -> dict:
    """Speaker turns with the options and models that made them, the clustering threshold
    used and each speaker's centroid (float32 values, as the embeddings)."""
    segmentation, embedding = result.segmentation.metadata, result.embedding_metadata
    return {
        **envelope(segmentation, embedding),
        "uri": uri,
        "duration": result.duration,
        "speakers": list(result.speakers),
        "turns": [{"start": round(t.start, 6), "end": round(t.end, 6), "speaker": t.speaker}
                  for t in turns],
        "options": _options(result),
        "num_speakers": result.num_speakers, "min_speakers": result.min_speakers,
        "max_speakers": result.max_speakers,
        "provider": result.provider,
        "exclusive": exclusive,
        "threshold": result.options.clustering_threshold,
        "model": segmentation.get("model", ""), "variant": segmentation.get("variant", ""),
        "embedding_model": embedding.get("model", ""),
        "embedding_variant": embedding.get("variant", ""),
        "embedding_provider": result.embedding_provider,
        "centroids": {speaker: [float(v) for v in np.asarray(centroid, np.float32)]
                      for speaker, centroid in zip(result.speakers, result.centroids)},
        **voices_json(result),
    }


def voices_json(result: Diarization) -> dict:
    """With a voice bank: each speaker's label, the name it took and its cosine similarity to
    that voice, and its most similar voice (runtime/diarization/voices.py)."""
    if not result.voice_matches:
        return {}
    return {"voices": [{"speaker": speaker, "label": m.label, "name": m.name,
                        "similarity": _round(m.similarity), "closest": m.closest,
                        "closest_similarity": _round(m.closest_similarity)}
                       for speaker, m in zip(result.speakers, result.voice_matches)]}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _options(result: Segmentation | Diarization) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(result.options).items()}


def grid_npz(grid: FrameGrid) -> dict[str, np.ndarray]:
    """The frame grid as the npz files' ``frame_start``, ``frame_step``, ``frame_duration``."""
    return {"frame_start": np.float64(grid.start), "frame_step": np.float64(grid.step),
            "frame_duration": np.float64(grid.duration)}


def scores_npz(result: Segmentation) -> dict[str, np.ndarray]:
    """Aggregated scores and their frame grid (seconds)."""
    return {
        "speech": result.speech, "overlap": result.overlap, "count": result.count,
        **grid_npz(result.grid), "duration": np.float64(result.duration),
    }


def embeddings_npz(done: list[tuple[str, Embedding]]) -> dict[str, np.ndarray]:
    """Whole-input embeddings, one row per (uri, embedding): ``powerseg embed``'s one npz,
    and each input's own with ``--output-dir`` (one row), so one reader takes both."""
    return {
        "embeddings": np.stack([e.vector for _, e in done]),
        "uris": np.array([uri for uri, _ in done]),
        "num_frames": np.array([e.num_frames for _, e in done], dtype=np.int32),
    }


def segment_npz(result: Segmentation) -> dict[str, np.ndarray]:
    """Per-chunk speaker activations and their chunk/frame grids (seconds)."""
    return {
        "activations": result.activations,
        "chunk_start": np.float64(0.0), "chunk_step": np.float64(result.chunk_step),
        "chunk_duration": np.float64(result.chunk_duration), **grid_npz(result.grid),
    }


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """``np.savez_compressed``'s format (``np.load`` reads it), without the time of writing in
    the zip entries: the same arrays give the same bytes, wherever and whenever written."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(array), allow_pickle=False)
    return buffer.getvalue()


def write_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """``npz_bytes`` to ``path``, whole or not at all."""
    with atomic_output(path, binary=True) as f:
        f.write(npz_bytes(arrays))


def write_text(path: str | Path, text: str) -> None:
    with atomic_output(path) as f:
        f.write(text)


def dumps_json(data: dict | list) -> str:
    return json.dumps(data, indent=1) + "\n"
