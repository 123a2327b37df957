"""What the aarch64 job checks that no other test does: results equal to the x86-64 run's, int8 on
ARM's kernels against fp32, and the diarization of the bundled sample against pyannote's RTTM.

.ci/arm64 runs every ``arm64``-marked test (these and a selection of the others) in an emulated
aarch64 Debian. The x86-64 results come from the same CI run: ``python tests/test_arm64.py OUT.npz``
on x86-64 writes them, and POWERSEG_X86_RESULTS names that file for the aarch64 run. Without it
(natively, on x86-64) the comparisons with x86-64 are skipped and the rest runs as usual.

One diarization of the sample (30 s, 2 speakers) gives the fp32 segmentation, the CAM++ embeddings
and the RTTM; one int8 segmentation gives the int8 side: emulation runs them at a few percent of
native speed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import SHARED
from powerseg.runtime.cpu import cpu_info
from powerseg.runtime.metrics import detection_error
from powerseg.runtime.writers import rttm_lines
from test_embedder import MIN_COSINE, cosine

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


def results(diarization, int8) -> dict[str, np.ndarray]:
    """Everything compared across architectures, as arrays: per variant the VAD and OSD regions
    ((n, 2) start, end), the aggregated scores and the per-chunk activations; the embeddings and
    the RTTM of the diarization."""
    out = {"cpu": np.array(cpu_info().describe()),
           "rttm": np.array("".join(rttm_lines(URI, diarization.turns()))),
           "embeddings": diarization.embeddings}
    for variant, seg in (("fp32", diarization.segmentation), ("int8", int8)):
        out[f"{variant}_vad"] = spans(seg.vad())
        out[f"{variant}_osd"] = spans(seg.osd())
        out[f"{variant}_speech"], out[f"{variant}_overlap"] = seg.speech, seg.overlap
        out[f"{variant}_activations"] = seg.activations
    return out


def spans(regions) -> np.ndarray:
    return np.array([(r.start, r.end) for r in regions], np.float64).reshape(-1, 2)


def figure(capsys, text: str) -> None:
    """One measured figure on the job's log (README, Platforms, quotes them)."""
    with capsys.disabled():
        print(f"\n  [{cpu_info().architecture}] {text}")


@pytest.fixture(scope="module")
def diarization(shared):
    return diarize()


@pytest.fixture(scope="module")
def int8(shared):
    return segment_int8()


@pytest.fixture(scope="module")
def here(diarization, int8) -> dict[str, np.ndarray]:
    return results(diarization, int8)


@pytest.fixture(scope="module")
def x86() -> dict[str, np.ndarray]:
    path = os.environ.get(X86_RESULTS)
    if not path:
        if cpu_info().architecture != "x86_64":
            pytest.fail(f"{X86_RESULTS} must name the x86-64 results (python tests/test_arm64.py OUT.npz)")
        pytest.skip(f"compares with x86-64: {X86_RESULTS} is not set")
    with np.load(path) as data:
        return dict(data)


def test_diarization_rttm_is_pyannotes(diarization, capsys):
    for suffix, turns in (("", diarization.turns()), (".exclusive", diarization.exclusive())):
        expected = (DIARIZATION / f"{URI}{suffix}.rttm").read_text()
        assert "".join(rttm_lines(URI, turns)) == expected, suffix
    figure(capsys, f"diarization of {URI}: RTTM identical to pyannote's, default and exclusive "
                   f"({len(diarization.turns())} turns, {len(diarization.speakers)} speakers)")


def test_embeddings_match_the_reference(diarization, capsys):
    """The bar of test_embedder on the very pairs the diarization embedded."""
    with np.load(DIARIZATION / f"{URI}.npz") as data:
        expected = data["embeddings"]
    got = diarization.embeddings
    assert got.shape == expected.shape
    nan = np.isnan(expected).any(-1)
    np.testing.assert_array_equal(np.isnan(got).any(-1), nan)
    worst = cosine(got[~nan], expected[~nan]).min()
    assert worst >= MIN_COSINE
    figure(capsys, f"CAM++: {int((~nan).sum())} (chunk, speaker) embeddings, cosine to pyannote's "
                   f">= {worst:.7f}")


def test_int8_decisions_close_to_fp32(diarization, int8, capsys):
    """test_runtime_parity's per-file int8 bar: VAD within 2 % of fp32's speech (or one frame)."""
    fp32 = diarization.segmentation
    whole = [(0.0, fp32.duration)]
    speech = detection_error(fp32.vad(), [], None).reference
    vad = detection_error(fp32.vad(), int8.vad(), whole)
    assert vad.false_alarm + vad.missed <= max(0.02 * speech, fp32.frame_step + 1e-6)
    overlap = detection_error(fp32.osd(), [], None).reference
    osd = detection_error(fp32.osd(), int8.osd(), whole)
    figure(capsys, f"int8 vs fp32 on {URI}: VAD differs on {vad.false_alarm + vad.missed:.3f} s of "
                   f"{speech:.3f} s, OSD on {osd.false_alarm + osd.missed:.3f} s of {overlap:.3f} s")


@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_regions_identical_to_x86(variant, here, x86, capsys):
    for task in ("vad", "osd"):
        key = f"{variant}_{task}"
        np.testing.assert_array_equal(here[key], x86[key], err_msg=key)
    speech = np.abs(here[f"{variant}_speech"] - x86[f"{variant}_speech"]).max()
    overlap = np.abs(here[f"{variant}_overlap"] - x86[f"{variant}_overlap"]).max()
    same = (here[f"{variant}_activations"] == x86[f"{variant}_activations"]).all(-1).mean()
    figure(capsys, f"{variant} vs x86-64 ({x86['cpu']}): VAD and OSD regions identical; scores within "
                   f"{max(speech, overlap):.1e}; chunk activations equal on {100 * same:.3f} % of frames")


def test_diarization_identical_to_x86(here, x86, capsys):
    assert str(here["rttm"]) == str(x86["rttm"])
    nan = np.isnan(x86["embeddings"]).any(-1)
    worst = cosine(here["embeddings"][~nan], x86["embeddings"][~nan]).min()
    assert worst >= MIN_COSINE
    figure(capsys, f"diarization vs x86-64: RTTM identical, embeddings cosine >= {worst:.7f}")


if __name__ == "__main__":  # on x86-64, before the aarch64 job: write what it compares with
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/test_arm64.py OUT.npz")
    np.savez(Path(sys.argv[1]), **results(diarize(), segment_int8()))
