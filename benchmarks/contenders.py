"""What is timed: torch, pyannote.audio, the runtime's model, and the CLI in-process."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
from tiling import RATE, SHARED
from timing import log


def load_torch(threads: int, provider: str):
    try:
        import torch
        from powerseg.export import load_checkpoint
    except ImportError as error:
        return None, f"not installed ({error.name})"
    ckpt = SHARED / "checkpoints" / "segmentation-3.0" / "pytorch_model.bin"
    if not ckpt.is_file():
        return None, f"no checkpoint at {ckpt}"
    torch.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(1)
    model = load_checkpoint(ckpt).eval()
    device = "cuda" if provider == "cuda" and torch.cuda.is_available() else "cpu"
    model = model.to(device)

    def forward(windows: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = torch.from_numpy(windows[:, None, :]).to(device)
            return model(x).cpu().numpy()
    return forward, f"torch {torch.__version__} ({device}, {threads} threads)"


def pyannote_status() -> str:
    try:
        import pyannote.audio  # noqa: F401
    except ImportError:
        return "not installed"
    return f"installed ({pyannote.audio.__version__})"


def load_pyannote(threads: int, provider: str):
    """pyannote.audio's Inference on the same checkpoint, as a chunk-batch callable."""
    if pyannote_status() == "not installed":
        return None
    try:
        import torch
        from pyannote.audio import Model
        ckpt = SHARED / "checkpoints" / "segmentation-3.0" / "pytorch_model.bin"
        model = Model.from_pretrained(str(ckpt)).eval()
        device = torch.device("cuda" if provider == "cuda" and torch.cuda.is_available() else "cpu")
        model.to(device)

        def infer(windows: np.ndarray) -> np.ndarray:  # Inference.infer is its forward + batching
            with torch.inference_mode():
                return model(torch.from_numpy(windows[:, None, :]).to(device)).cpu().numpy()
        return infer
    except Exception as error:  # noqa: BLE001 - report, do not fail the benchmark
        log(f"pyannote.audio present but unusable: {error}")
        return None


def onnx_model(variant: str, threads: int, provider: str):
    """The runtime's model as the runtime drives it: B windows split over its workers."""
    from powerseg.runtime.segmentation.model import SegmentationModel

    model = SegmentationModel(variant, threads=threads, providers=provider)

    def forward(windows: np.ndarray) -> np.ndarray:
        parts = np.array_split(windows, min(model.workers, len(windows)))
        return np.concatenate(model.map(model, parts))

    forward.spec, forward.workers = model.spec, model.workers
    return forward


def live_stream(variant: str, threads: int, provider: str, signal: np.ndarray,
                shared_front: bool = True):
    """A live stream's cost of one window: push the next step (1 s) of audio to a stream that
    already holds 9 s, get the frames it makes final (front blocks, first block, tail, overlap-add).

    Each call takes the next second of ``signal``; the stream starts again (untimed warm-up
    aside, a once-in-a-run cost) if ``signal`` runs out.
    """
    from powerseg import Segmenter

    seg = Segmenter(model=variant, threads=threads, providers=provider, shared_front=shared_front)
    step, window = seg.framing.step_samples, seg.spec.window_samples
    state = {}

    def restart():
        state["stream"] = seg.stream()
        state["stream"].push(signal[:window - step])
        state["at"] = window - step

    def push():
        if "stream" not in state or state["at"] + step > len(signal):
            restart()
        state["stream"].push(signal[state["at"]:state["at"] + step])
        state["at"] += step

    return push


def one_shot(threads: int, provider: str, chunk: np.ndarray):
    """A whole ``Segmenter()`` call on one 10 s array (what a caller of the API waits for)."""
    from powerseg import Segmenter

    seg = Segmenter(threads=threads, providers=provider)
    return lambda: seg(chunk, sample_rate=16000, activations=False)


def pair_parts(variant: str, threads: int, provider: str, signal: np.ndarray) -> dict:
    """What a live window costs on the pair, part by part: the front on one step of audio, and
    the tail on one window (as a lone run: spread over the cores where that is faster)."""
    from powerseg.runtime.segmentation.model import SegmentationModel
    from powerseg.models import shared_tail_path
    from powerseg.runtime.windows import stack

    model = SegmentationModel(shared_tail_path(variant), threads=threads, providers=provider)
    source = model.windows(RATE)
    source.append(signal[:20 * RATE])
    batch = stack([source.next()])
    spec = model.front.spec
    blocks = np.lib.stride_tricks.sliding_window_view(
        signal[:RATE + spec.block_samples], spec.block_samples)[:RATE:spec.hop]
    return {f"{variant} pair: tail alone, one window": lambda: model.infer_lone(batch).result(),
            f"{variant} pair: front, 1 s of audio": lambda: list(model.front.rows(blocks))}


def cli_vad(path: Path, out: Path, variant: str, step: float, threads: int, provider: str,
            batch: int | None = None, shared_front: bool = True) -> None:
    """``powerseg vad`` in-process; ``batch`` None keeps the CLI's own default batch size."""
    from powerseg.cli import main
    args = ["vad", str(path), "-o", str(out), "--model", variant, "--step", f"{step:g}",
            "--threads", str(threads), "--provider", provider]
    args += ["--batch-size", str(batch)] if batch else []
    args += [] if shared_front else ["--no-shared-front"]
    with contextlib.redirect_stderr(io.StringIO()):
        status = main(args)
    if status != 0:
        raise RuntimeError(f"powerseg {' '.join(args)} exited {status}")
