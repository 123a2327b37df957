"""pyannote.audio 4.0.7's own SpeakerDiarization against powerseg's Diarizer, interleaved.

The pyannote side is the library's pipeline, unmodified, with the pyannote 3.1 recipe and the
CAM++ embedding as ../shared/reference/diarization/ describes it: the segmentation-3.0
checkpoint through ``Model.from_pretrained``, CAM++ rebuilt in torch by powerseg.export
(3D-Speaker's code is not on the package index) behind pyannote's embedding calling convention
(kaldi fbank of the whole chunk, mean-normalised, the masked frames cropped), PLDA off,
centroid linkage at threshold 0.86, min_cluster_size 12, step 1 s, batches of 32, torch at its
default threads. The powerseg side is ``Diarizer()`` at its defaults. Each run is a fresh child;
the parent takes its wall time, CPU seconds and peak RSS, the child its pipeline call alone.
The DER between the two outputs (collar 0, overlap scored) says whether they agree.

Needs the environment of benchmarks/pyannote_setup.sh and the checkpoints of ../shared:

    bash benchmarks/pyannote_setup.sh && . .venv-pyannote/bin/activate
    python benchmarks/pyannote_audio.py --minutes 10 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from diarization import CAMPPLUS_CHECKPOINT, SEGMENTATION_CHECKPOINT, der  # noqa: E402
from live import cpu  # noqa: E402
from memory import ROOT, SHARED, write_results, write_tiled  # noqa: E402
from timing import stats  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "pyannote_audio.json"

# One pipeline call in a child; prints {"run_s", "run_cpu_s", "turns"} as its last line.
PYANNOTE = r"""
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")  # torchcodec's decoders are not loaded: audio comes in memory
import numpy as np, soundfile as sf, torch
import torch.nn.functional as F
import torchaudio.compliance.kaldi as kaldi
import pyannote.audio.pipelines.speaker_diarization as sd
from pyannote.audio import Model
from powerseg.export.campplus_checkpoint import load_campplus

path, segmentation, campplus, threshold = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])


class CamPlusPlus:
    # pyannote's embedding calling convention: (batch, 1, samples) chunks and (batch, frames)
    # masks in, (batch, 192) out, NaN where fewer than min_num_frames fbank frames are kept
    sample_rate, dimension, metric, device = 16000, 192, "cosine", torch.device("cpu")
    min_num_samples, min_num_frames = 720, 3  # the smallest input CAM++ embeds: 3 fbank frames

    def __init__(self, model):
        self.model = model.eval()

    def to(self, device):
        return self

    def __call__(self, waveforms, masks=None):
        feats = torch.stack([kaldi.fbank(w, num_mel_bins=80, frame_length=25, frame_shift=10,
                                         dither=0.0, sample_frequency=16000) for w in waveforms])
        feats = feats - feats.mean(dim=1, keepdim=True)
        out = np.full((len(feats), self.dimension), np.nan)
        if masks is None:
            keep = torch.ones(feats.shape[:2], dtype=torch.bool)
        else:
            keep = F.interpolate(masks[:, None], size=feats.shape[1], mode="nearest")[:, 0] > 0.5
        with torch.inference_mode():
            for i, (frames, on) in enumerate(zip(feats, keep)):
                if int(on.sum()) >= self.min_num_frames:
                    out[i] = self.model(frames[on][None])[0].numpy()
        return out


embedding = CamPlusPlus(load_campplus(campplus))
sd.PretrainedSpeakerEmbedding = lambda *args, **kwargs: embedding
plda = sd.get_plda
sd.get_plda = lambda name, **kwargs: None if name is None else plda(name, **kwargs)
pipeline = sd.SpeakerDiarization(
    segmentation=Model.from_pretrained(segmentation), segmentation_step=0.1,
    embedding="campplus", plda=None, embedding_exclude_overlap=True,
    clustering="AgglomerativeClustering", embedding_batch_size=32, segmentation_batch_size=32)
assert pipeline._embedding is embedding, "the pipeline did not take the CAM++ wrapper"
pipeline.instantiate({"segmentation": {"min_duration_off": 0.0},
                      "clustering": {"method": "centroid", "min_cluster_size": 12,
                                     "threshold": threshold}})
samples, rate = sf.read(path, dtype="float32")
file = {"uri": "bench", "waveform": torch.from_numpy(samples)[None], "sample_rate": rate}
usage, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
output = pipeline(file)
run_s = time.perf_counter() - start
after = resource.getrusage(resource.RUSAGE_SELF)
annotation = getattr(output, "speaker_diarization", output)
turns = [[s.start, s.end, label] for s, _, label in annotation.itertracks(yield_label=True)]
print(json.dumps({"run_s": run_s, "threads": torch.get_num_threads(), "turns": turns,
                  "run_cpu_s": after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime}))
"""

POWERSEG = r"""
import json, resource, sys, time
from powerseg import Diarizer
diarizer = Diarizer(providers="cpu")
usage, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
result = diarizer(sys.argv[1])
run_s = time.perf_counter() - start
after = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"run_s": run_s, "turns": [[t.start, t.end, t.speaker] for t in result.turns()],
                  "run_cpu_s": after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime}))
"""


def child(code: str, *args: str) -> dict:
    """Run ``code`` in a fresh Python; its report with the process's wall, CPU and peak RSS."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen([sys.executable, "-c", code, *args], stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        out.seek(0), err.seek(0)
        text, error = out.read().decode(), err.read().decode()
    if status != 0:
        sys.exit(f"child failed:\n{error[-3000:]}")
    doc = json.loads(text.strip().splitlines()[-1])
    doc.update(process_s=time.perf_counter() - start, peak_rss_mib=usage.ru_maxrss / 1024,
               process_cpu_s=usage.ru_utime + usage.ru_stime)
    return doc


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threshold", type=float, default=0.86)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    sources = sorted((SHARED / "audio" / "libri_conv_a" / "wav").glob("*.wav"))
    if not sources or not SEGMENTATION_CHECKPOINT.is_file() or not CAMPPLUS_CHECKPOINT.is_file():
        sys.exit(f"needs the libri_conv_a audio and both checkpoints under {SHARED}")
    path = write_tiled(Path(tempfile.gettempdir()) / f"powerseg-conv-{args.minutes:g}min.wav",
                       args.minutes * 60, sources)
    print(f"CPU: {cpu()}; {args.minutes:g} min, {args.rounds} interleaved rounds", flush=True)
    sides = {"pyannote.audio": (PYANNOTE, str(path), str(SEGMENTATION_CHECKPOINT),
                                str(CAMPPLUS_CHECKPOINT), str(args.threshold)),
             "powerseg": (POWERSEG, str(path))}
    runs: dict[str, list[dict]] = {name: [] for name in sides}
    names = list(sides)
    for r in range(args.rounds):
        for name in names[r % 2:] + names[:r % 2]:
            run = child(*sides[name])
            runs[name].append(run)
            print(f"  {name:>14}: pipeline {run['run_s']:6.1f} s ({run['run_cpu_s']:6.1f} CPU s), "
                  f"process {run['process_s']:6.1f} s, peak RSS {run['peak_rss_mib']:5.0f} MiB",
                  flush=True)
    theirs, ours = runs["pyannote.audio"], runs["powerseg"]
    summary = {name: {key: stats([run[key] for run in side]) for key in
                      ("run_s", "run_cpu_s", "process_s", "process_cpu_s", "peak_rss_mib")}
               for name, side in runs.items()}
    wall = [t["run_s"] / o["run_s"] for t, o in zip(theirs, ours)]
    cpu_share = [o["run_cpu_s"] / t["run_cpu_s"] for t, o in zip(theirs, ours)]
    doc = {"cpu": cpu(), "minutes": args.minutes, "rounds": args.rounds,
           "pyannote_threads": theirs[0]["threads"], "runs": summary,
           "speedup_wall": stats(wall), "cpu_seconds_share": stats(cpu_share),
           "der_between_outputs": der(theirs[0]["turns"], ours[0]["turns"])}
    print(f"\npowerseg is x{doc['speedup_wall']['median']:.2f} pyannote.audio's speed (pipeline "
          f"wall) for {doc['cpu_seconds_share']['median']:.2f}x its CPU seconds; DER between the "
          f"outputs {100 * doc['der_between_outputs']:.3f} %")
    write_results(args.output, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
