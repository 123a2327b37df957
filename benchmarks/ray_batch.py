"""Throughput of the Ray path (``--ray``) next to the local batch mode (``--jobs 2``), same machine.

The same 30 files (the 15 shared 30 s recordings of ami_pyannote_debug and pyannote_sample, each
twice under two names) go through ``powerseg COMMAND DIR --output-dir OUT``:

- ``local``: ``--jobs 2`` on this machine;
- ``ray``: ``--ray ADDRESS`` on a one-node Ray cluster on 127.0.0.1 with one CPU per core
  (2 worker actors here), started before and not counted (its start time is reported apart).

Each run is a fresh driver process (wall time and peak RSS from ``os.wait4``); the workers' peak
RSS is their ``VmHWM``, sampled from /proc while the run goes. The outputs of the two runs are
compared byte for byte. Overhead per file = (ray wall - local wall) / files.

    python benchmarks/ray_batch.py                     # vad and diarize
    python benchmarks/ray_batch.py --command vad

Prints a table and writes benchmarks/results/ray_batch.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("POWERSEG_SHARED", ROOT.parent / "shared"))
RESULTS = ROOT / "benchmarks" / "results" / "ray_batch.json"
ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
       "PYTHONUNBUFFERED": "1"}

CLUSTER = r"""
import os, sys
from ray.cluster_utils import Cluster
cluster = Cluster(initialize_head=True, head_node_args=dict(
    num_cpus=os.cpu_count(), include_dashboard=False, node_ip_address="127.0.0.1"))
cluster.wait_for_nodes()
print(cluster.address, flush=True)
sys.stdin.read()
cluster.shutdown()
"""


def _status(pid: int) -> dict[str, str]:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    return dict(line.split(":", 1) for line in lines if ":" in line)


def _kib(value: str) -> int:
    return int(value.split()[0]) if value else 0


class Sampler(threading.Thread):
    """Peak RSS (VmHWM) of every Ray worker actor process seen while running."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peaks: dict[int, int] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                try:
                    cmdline = (entry / "cmdline").read_bytes()
                except OSError:
                    continue
                if b"MapWorker" in cmdline:
                    peak = _kib(_status(int(entry.name)).get("VmHWM", ""))
                    self.peaks[int(entry.name)] = max(peak, self.peaks.get(int(entry.name), 0))
            self.stop.wait(0.2)


def timed(args: list[str]) -> tuple[float, int, str]:
    """(wall seconds, peak RSS MiB, stderr) of one powerseg driver process."""
    with tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-m", "powerseg", *args], env=ENV,
                                 stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read()
    if child.returncode != 0:
        raise SystemExit(f"powerseg {' '.join(args)} failed:\n{text[-3000:]}")
    return wall, usage.ru_maxrss // 1024, text


def outputs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if not p.name.startswith((".", "_"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--command", choices=("vad", "osd", "scores", "diarize"), nargs="+",
                        default=["vad", "diarize"])
    options = parser.parse_args()

    recordings = sorted((SHARED / "audio" / "ami_pyannote_debug" / "wav").glob("*.wav")) + \
        [SHARED / "audio" / "pyannote_sample" / "wav" / "sample.wav"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        inputs = tmp / "in"
        inputs.mkdir()
        for copy in ("a", "b"):
            for f in recordings:
                (inputs / f"{copy}_{f.name}").symlink_to(f)
        files = len(list(inputs.iterdir()))

        start = time.perf_counter()
        helper = subprocess.Popen([sys.executable, "-c", CLUSTER], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, env=ENV, text=True,
                                  start_new_session=True)
        try:
            address = helper.stdout.readline().strip()
            if not address.startswith("127.0.0.1:"):
                raise SystemExit(f"the Ray cluster did not start: {address!r}")
            cluster_start = time.perf_counter() - start
            rows = []
            for command in options.command:
                local_out, ray_out = tmp / f"local_{command}", tmp / f"ray_{command}"
                local_wall, local_rss, _ = timed([command, str(inputs), "--output-dir",
                                                  str(local_out), "--jobs", "2"])
                sampler = Sampler()
                sampler.start()
                ray_wall, ray_rss, text = timed([command, str(inputs), "--output-dir",
                                                 str(ray_out), "--ray", address])
                sampler.stop.set()
                sampler.join()
                same = outputs(local_out) == outputs(ray_out)
                assert f"{files} done" in text, text[-2000:]
                rows.append({
                    "command": command, "files": files,
                    "local_jobs2": {"wall_s": round(local_wall, 2),
                                    "files_per_min": round(60 * files / local_wall, 1),
                                    "peak_rss_mib": local_rss},
                    "ray": {"workers": len(sampler.peaks), "wall_s": round(ray_wall, 2),
                            "files_per_min": round(60 * files / ray_wall, 1),
                            "driver_peak_rss_mib": ray_rss,
                            "worker_peak_rss_mib": sorted(v // 1024 for v in
                                                          sampler.peaks.values())},
                    "overhead_per_file_s": round((ray_wall - local_wall) / files, 3),
                    "outputs_identical": same,
                })
        finally:
            helper.stdin.close()
            try:
                helper.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(helper.pid, 9)
                helper.wait()

    print(f"{files} files of 30 s, {os.cpu_count()} cores; Ray cluster start "
          f"{cluster_start:.1f} s (not counted)")
    print("| command | local --jobs 2 | Ray, 2 workers | overhead per file | driver peak RSS "
          "(local / Ray) | Ray worker peak RSS | outputs |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        local, ray = r["local_jobs2"], r["ray"]
        print(f"| {r['command']} | {local['files_per_min']} files/min ({local['wall_s']} s) | "
              f"{ray['files_per_min']} files/min ({ray['wall_s']} s) | "
              f"{r['overhead_per_file_s']:+.3f} s | {local['peak_rss_mib']} / "
              f"{ray['driver_peak_rss_mib']} MiB | "
              f"{', '.join(str(v) for v in ray['worker_peak_rss_mib'])} MiB | "
              f"{'identical' if r['outputs_identical'] else 'DIFFER'} |")
    import ray

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "ray": ray.__version__},
        "cluster_start_s": round(cluster_start, 2), "runs": rows}, indent=1) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
