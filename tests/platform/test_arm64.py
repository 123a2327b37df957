"""What the aarch64 job checks that no other test does: results equal to the x86-64 run's, int8 on
ARM's kernels against fp32, and the diarization of the bundled sample against pyannote's RTTM.

.ci/arm64 runs every ``arm64``-marked test (these and a selection of the others) in an emulated
aarch64 Debian. The x86-64 results come from the same CI run:
``PYTHONPATH=tests python tests/platform/test_arm64.py OUT.npz`` on x86-64 writes them (tests/ on
the path for helpers.py), and POWERSEG_X86_RESULTS names that file for the aarch64 run. Without
it (natively, on x86-64) the comparisons with x86-64 are skipped and the rest runs as usual.

One diarization of the sample (30 s, 2 speakers) gives the fp32 segmentation, the CAM++ embeddings
and the RTTM; one int8 segmentation gives the int8 side: emulation is slow, so each is made once.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import MIN_COSINE, SHARED, cosine
from powerseg.runtime.cpu import cpu_info
from powerseg.runtime.metrics import detection_error
from powerseg.runtime.writers import rttm_lines

pytestmark = pytest.mark.arm64

NAME, URI = "pyannote_sample", "sample"
WAV = SHARED / "audio" / NAME / "wav" / f"{URI}.wav"
DIARIZATION = SHARED / "reference" / "diarization" / NAME
X86_RESULTS = "POWERSEG_X86_RESULTS"


def diarize():
    from powerseg import Diarizer

    return Diarizer(providers="cpu")(WAV)


def segment_int8():
    from powerseg import Segmenter

    return Segmenter(model="int8", providers="cpu")(WAV)


def variant_results(variant: str, seg) -> dict[str, np.ndarray]:
    """A segmentation's VAD and OSD regions ((n, 2) start, end), aggregated scores and per-chunk
    activations, keyed by variant."""
    return {f"{variant}_vad": spans(seg.vad()), f"{variant}_osd": spans(seg.osd()),
            f"{variant}_speech": seg.speech, f"{variant}_overlap": seg.overlap,
            f"{variant}_activations": seg.activations}


def diarization_results(diarization) -> dict[str, np.ndarray]:
    """The RTTM and embeddings of a diarization, and its (fp32) segmentation's results."""
    return {"rttm": np.array("".join(rttm_lines(URI, diarization.turns()))),
            "embeddings": diarization.embeddings,
            **variant_results("fp32", diarization.segmentation)}


def spans(regions) -> np.ndarray:
    return np.array([(r.start, r.end) for r in regions], np.float64).reshape(-1, 2)


def figure(capsys, text: str) -> None:
    """One measured figure on the job's log (README's Platforms section quotes them)."""
    with capsys.disabled():
        print(f"\n  [{cpu_info().architecture}] {text}")


@pytest.fixture(scope="module")
def diarization(shared):
    return diarize()


@pytest.fixture(scope="module")
def int8(shared):
    return segment_int8()


@pytest.fixture(scope="module")
def x86() -> dict[str, np.ndarray]:
    path = os.environ.get(X86_RESULTS)
    if not path:
        if cpu_info().architecture != "x86_64":
            pytest.fail(f"{X86_RESULTS} must name the x86-64 results "
                        "(PYTHONPATH=tests python tests/platform/test_arm64.py OUT.npz)")
        pytest.skip(f"compares with x86-64: {X86_RESULTS} is not set")
    with np.load(path) as data:
        return dict(data)


def test_diarization_rttm_is_pyannotes(diarization, capsys):
    for suffix, turns in (("", diarization.turns()), (".exclusive", diarization.exclusive())):
        expected = (DIARIZATION / f"{URI}{suffix}.rttm").read_text()
        assert "".join(rttm_lines(URI, turns)) == expected, suffix
    figure(capsys, f"diarization of {URI}: RTTM identical to pyannote's, default and exclusive "
                   f"({len(diarization.turns())} turns, {len(diarization.speakers)} speakers)")


def same_input_cosine(embeddings: np.ndarray, activations: np.ndarray, expected_embeddings: np.ndarray,
                      expected_activations: np.ndarray) -> tuple[float, int, int]:
    """Worst cosine between the embeddings of the chunks whose hard activations (hence the masks
    of all their speakers) are the expected ones; the pairs compared; the chunks left out.

    A chunk whose segmentation differs by a frame embeds other frames: the segmentation's own
    bar says how many may (test_runtime_parity), so here only the embedding of equal input is
    judged."""
    assert embeddings.shape == expected_embeddings.shape
    same = (activations == expected_activations).all(axis=(1, 2))
    nan = np.isnan(expected_embeddings).any(-1)
    np.testing.assert_array_equal(np.isnan(embeddings).any(-1)[same], nan[same])
    pairs = ~nan & same[:, None]
    closest = float(cosine(embeddings[pairs], expected_embeddings[pairs]).min())
    return closest, int(pairs.sum()), int((~same).sum())


def test_embeddings_match_the_reference(diarization, capsys):
    """test_embedder's bar on the pairs the diarization embedded from pyannote's very masks."""
    with np.load(DIARIZATION / f"{URI}.npz") as ref:
        worst, pairs, left_out = same_input_cosine(diarization.embeddings,
                                                   diarization.segmentation.activations,
                                                   ref["embeddings"], ref["binarized"])
    # test_runtime_parity lets 1 frame in 10,000 differ from pyannote's: of the sample's 12,369, one
    assert left_out <= 1
    assert worst >= MIN_COSINE
    figure(capsys, f"CAM++: {pairs} (chunk, speaker) embeddings on pyannote's masks, cosine to "
                   f"pyannote's >= {worst:.7f} ({left_out} chunks with another segmentation left out)")


def test_int8_decisions_close_to_fp32(diarization, int8, capsys):
    """test_runtime_parity's per-file int8 bar: VAD within 2 % of fp32's speech (or one frame)."""
    fp32 = diarization.segmentation
    whole = [(0.0, fp32.duration)]
    speech = detection_error(fp32.vad(), [], None).reference
    vad = detection_error(fp32.vad(), int8.vad(), whole)
    assert vad.false_alarm + vad.missed <= max(0.02 * speech, fp32.grid.step + 1e-6)
    overlap = detection_error(fp32.osd(), [], None).reference
    osd = detection_error(fp32.osd(), int8.osd(), whole)
    figure(capsys, f"int8 vs fp32 on {URI}: VAD differs on {vad.false_alarm + vad.missed:.3f} s of "
                   f"{speech:.3f} s, OSD on {osd.false_alarm + osd.missed:.3f} s of {overlap:.3f} s")


@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_regions_identical_to_x86(variant, request, x86, capsys):
    if variant == "fp32":
        here = variant_results(variant, request.getfixturevalue("diarization").segmentation)
    else:  # int8 alone: the job's other CPU models run only this
        here = variant_results(variant, request.getfixturevalue("int8"))
    for task in ("vad", "osd"):
        key = f"{variant}_{task}"
        np.testing.assert_array_equal(here[key], x86[key], err_msg=key)
    speech = np.abs(here[f"{variant}_speech"] - x86[f"{variant}_speech"]).max()
    overlap = np.abs(here[f"{variant}_overlap"] - x86[f"{variant}_overlap"]).max()
    same = (here[f"{variant}_activations"] == x86[f"{variant}_activations"]).all(-1).mean()
    figure(capsys, f"{variant} vs x86-64 ({x86['cpu']}): VAD and OSD regions identical; scores within "
                   f"{max(speech, overlap):.1e}; chunk activations equal on {100 * same:.3f} % of frames")


def test_diarization_identical_to_x86(diarization, x86, capsys):
    here = diarization_results(diarization)
    assert str(here["rttm"]) == str(x86["rttm"])
    worst, pairs, left_out = same_input_cosine(here["embeddings"], here["fp32_activations"],
                                               x86["embeddings"], x86["fp32_activations"])
    assert left_out <= 2  # each within one frame of pyannote's (test_runtime_parity)
    assert worst >= MIN_COSINE
    figure(capsys, f"diarization vs x86-64: RTTM identical; {pairs} embeddings on equal masks, cosine "
                   f">= {worst:.7f} ({left_out} chunks with another segmentation left out)")


if __name__ == "__main__":  # on x86-64, before the aarch64 job: write what it compares with
    if len(sys.argv) != 2:
        sys.exit("usage: PYTHONPATH=tests python tests/platform/test_arm64.py OUT.npz")
    np.savez(Path(sys.argv[1]), cpu=np.array(cpu_info().describe()), **diarization_results(diarize()),
             **variant_results("int8", segment_int8()))
