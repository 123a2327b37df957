"""pyannote.core views of powerseg results, so existing pyannote code can take them as they are.

Needs the optional ``pyannote`` extra (pyannote.core); the runtime itself never imports it.
"""

from __future__ import annotations

import numpy as np

from powerseg.errors import PowersegError
from powerseg.runtime.binarize import Region
from powerseg.runtime.diarization.diarizer import Diarization, Turn
from powerseg.runtime.segmentation.segmenter import Segmentation


def _core():
    try:
        import pyannote.core as core
    except ImportError:
        raise PowersegError("pyannote interop needs pyannote.core: "
                            "pip install 'powerseg[pyannote]'") from None
    return core


def to_annotation(regions: list[Region] | list[Turn] | Diarization, uri: str | None = None):
    """Regions, speaker turns or a whole diarization (its ``turns()``) ->
    ``pyannote.core.Annotation``: one track per region, labelled by region label / speaker,
    what pyannote's ``SpeakerDiarization`` returns as ``speaker_diarization``."""
    core = _core()
    if isinstance(regions, Diarization):
        regions = regions.turns()
    annotation = core.Annotation(uri=uri)
    for i, region in enumerate(regions):
        annotation[core.Segment(region.start, region.end), i] = region.label
    return annotation


def frames_window(result: Segmentation):
    """The frame grid as a ``pyannote.core.SlidingWindow``."""
    grid = result.grid
    return _core().SlidingWindow(start=grid.start, duration=grid.duration, step=grid.step)


def to_sliding_window_feature(result: Segmentation, scores: str = "speech"):
    """Aggregated ``speech``, ``overlap`` or ``count`` -> (frames, 1) ``SlidingWindowFeature``,

    the object pyannote's VAD/OSD ``Inference`` returns, ready for pyannote's ``Binarize``.
    """
    if scores not in ("speech", "overlap", "count"):
        raise PowersegError(f"unknown scores {scores!r}: use speech, overlap or count")
    data = getattr(result, scores)[:, None]
    return _core().SlidingWindowFeature(data, frames_window(result))


def activations_feature(result: Segmentation):
    """Per-chunk activations -> (chunks, frames, speakers) ``SlidingWindowFeature`` on the chunk grid,

    as pyannote's segmentation ``Inference`` returns it (what its diarization pipeline consumes).
    """
    if result.activations is None:
        raise PowersegError("this result has no per-chunk activations (run with activations=True)")
    core = _core()
    chunks = core.SlidingWindow(start=0.0, duration=result.chunk_duration, step=result.chunk_step)
    return core.SlidingWindowFeature(np.asarray(result.activations), chunks)
