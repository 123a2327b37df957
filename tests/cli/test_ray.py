"""powerseg on a real Ray cluster (``--ray``): two nodes on 127.0.0.1, started once per session.

The cluster is Ray's own multi-node test cluster (``ray.cluster_utils.Cluster``: a head node and a
second worker node, each its own raylet and object store) in a helper process; every address is
127.0.0.1 (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` makes Ray keep the loopback address instead of
swapping in the machine's). The finalizer shuts it down and then kills whatever of its process
tree is left, also when a test fails; every wait has a timeout.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from helpers import SHARED

from powerseg.cli import main

pytest.importorskip("ray")
pytestmark = pytest.mark.slow

AMI = SHARED / "audio" / "ami_pyannote_debug" / "wav"
SAMPLE = SHARED / "audio" / "pyannote_sample" / "wav" / "sample.wav"
RUN_TIMEOUT = 300  # seconds for one powerseg run on the cluster

ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
       "RAY_DATA_DISABLE_PROGRESS_BARS": "1", "PYTHONUNBUFFERED": "1"}

CLUSTER = r"""
import sys
from ray.cluster_utils import Cluster
cluster = Cluster(initialize_head=True, head_node_args=dict(
    num_cpus=1, include_dashboard=False, node_ip_address="127.0.0.1"))
cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
cluster.wait_for_nodes()
print(cluster.address, flush=True)
sys.stdin.read()  # until the test session closes it
cluster.shutdown()
"""


def _children() -> dict[int, int]:
    """pid -> parent pid of every process."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                table[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    return table


def _tree(root: int) -> set[int]:
    table, found, frontier = _children(), set(), {root}
    while frontier:
        found |= frontier
        frontier = {pid for pid, parent in table.items() if parent in frontier} - found
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@contextmanager
def driver(*args: str, stderr=subprocess.PIPE) -> Iterator[subprocess.Popen]:
    """``powerseg ARGS`` as a separate driver process, killed if a test leaves it running."""
    process = subprocess.Popen([sys.executable, "-m", "powerseg", *args], env=ENV, text=True,
                               stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def outputs_appear(process: subprocess.Popen, out: Path, suffix: str, count: int) -> None:
    """Wait until ``count`` outputs are in ``out``, the run still going."""
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None and \
            len(list(out.glob(f"*{suffix}"))) < count:
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be interrupted"


def started(process: subprocess.Popen) -> None:
    """Wait until powerseg's own imports run (numpy mapped): before, Python is starting up."""
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        try:
            if "numpy" in Path(f"/proc/{process.pid}/maps").read_text():
                return
        except OSError:
            pass
        time.sleep(0.005)


@pytest.fixture(scope="session")
def ray_cluster(shared):
    helper = subprocess.Popen([sys.executable, "-c", CLUSTER], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, env=ENV, text=True,
                              start_new_session=True)
    seen: set[int] = set()

    def stop() -> None:
        seen.update(_tree(helper.pid))
        try:
            helper.stdin.close()
            helper.wait(timeout=60)
        except (subprocess.TimeoutExpired, OSError):
            pass
        for pid in seen | _tree(helper.pid):  # anything the shutdown left behind
            if pid != os.getpid():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        helper.wait(timeout=30)

    try:
        deadline = time.monotonic() + 120
        import selectors

        with selectors.DefaultSelector() as selector:
            selector.register(helper.stdout, selectors.EVENT_READ)
            if not selector.select(timeout=max(1, deadline - time.monotonic())):
                raise TimeoutError("the Ray test cluster did not start in 120 s")
        address = helper.stdout.readline().strip()
        assert address.startswith("127.0.0.1:"), address
        seen.update(_tree(helper.pid))
        yield address
    finally:
        stop()
        left = [pid for pid in seen if Path(f"/proc/{pid}").exists()
                and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()]
        assert not left, f"Ray processes left running: {left}"


def powerseg(*args: str, timeout: float = RUN_TIMEOUT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "powerseg", *args], env=ENV, text=True,
                          capture_output=True, timeout=timeout)


def local(tmp_path: Path, *args: str) -> Path:
    out = tmp_path / "local"
    assert main([*args, "--output-dir", str(out), "--jobs", "2"]) == 0
    return out


def outputs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())
            if not p.name.startswith((".", "_"))}


def inputs(tmp_path: Path, files: list[Path], name: str = "in") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    for f in files:
        (folder / f.name).symlink_to(f)
    return folder


def test_cluster_is_two_nodes_on_loopback(ray_cluster):
    code = f"""
import ray
ray.init(address="{ray_cluster}")
print(sorted(n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"]))
"""
    done = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True,
                          timeout=120)
    assert done.stdout.strip() == "['127.0.0.1', '127.0.0.1']", done.stderr


@pytest.mark.parametrize("command,fmt", [("vad", "json"), ("osd", "rttm"), ("scores", "npz"),
                                         ("diarize", "rttm"), ("diarize", "json"),
                                         ("embed", "npz")])
def test_same_bytes_as_local(ray_cluster, tmp_path, command, fmt):
    folder = inputs(tmp_path, [SAMPLE, AMI / "dev00.wav", AMI / "trn01.wav"])
    extra = [] if fmt == "npz" else ["--format", fmt]
    expected = outputs(local(tmp_path, command, str(folder), *extra))
    assert sorted(expected) == [f"dev00.{fmt}", f"sample.{fmt}", f"trn01.{fmt}"]
    out = tmp_path / "ray"
    done = powerseg(command, str(folder), "--output-dir", str(out), *extra, "--ray", ray_cluster)
    assert done.returncode == 0, done.stderr
    assert "powerseg: 3 done, 0 skipped (output exists), 0 failed" in done.stderr
    assert outputs(out) == expected
    assert not [p for p in out.iterdir() if p.name.endswith(".part")]
    if command == "scores":
        with np.load(out / "sample.npz") as data:
            assert data["speech"].shape == data["overlap"].shape
    summary = json.loads((out / "_powerseg_summary.json").read_text())
    assert summary["failed"] == [] and len(summary["done"]) == 3


def test_bad_inputs_reported_once_and_rerun_resumes(ray_cluster, tmp_path):
    folder = inputs(tmp_path, [SAMPLE, AMI / "dev01.wav"])
    (folder / "broken.wav").write_bytes(b"RIFF not really a wav")
    (folder / "empty.flac").write_bytes(b"")
    listing = tmp_path / "files.txt"
    listing.write_text("in/sample.wav\nin/broken.wav\nin/missing.wav\nin/dev01.wav\nin/empty.flac\n")
    out = tmp_path / "ray"
    args = ("vad", str(listing), "--output-dir", str(out), "--ray", ray_cluster)
    done = powerseg(*args)
    assert done.returncode == 1, done.stderr
    assert "powerseg: 2 done, 0 skipped (output exists), 3 failed" in done.stderr
    for name in ("broken.wav", "missing.wav", "empty.flac"):
        assert done.stderr.count(f"{name}") == 1, done.stderr  # once, at the end
    assert sorted(outputs(out)) == ["dev01.rttm", "sample.rttm"]
    summary = json.loads((out / "_powerseg_summary.json").read_text())
    assert sorted(Path(f["input"]).name for f in summary["failed"]) == \
        ["broken.wav", "empty.flac", "missing.wav"]
    assert all(f["error"] for f in summary["failed"])
    expected = outputs(local(tmp_path, "vad", str(tmp_path / "in" / "sample.wav"),
                             str(tmp_path / "in" / "dev01.wav")))
    assert outputs(out) == expected

    (out / "dev01.rttm").unlink()  # resume: one to redo, one finished, the bad ones again
    stamp = (out / "sample.rttm").stat().st_mtime_ns
    done = powerseg(*args)
    assert done.returncode == 1
    assert "powerseg: 1 done, 1 skipped (output exists), 3 failed" in done.stderr
    assert (out / "sample.rttm").stat().st_mtime_ns == stamp
    assert outputs(out) == expected


def _map_workers() -> set[int]:
    return {pid for pid in _children() if "MapWorker" in _cmdline(pid)}


def _watch(out: Path, seen: dict[str, tuple[int, int]]) -> None:
    for p in out.iterdir() if out.is_dir() else ():
        if not p.name.startswith((".", "_")) and p.name not in seen:
            st = p.stat()
            seen[p.name] = (st.st_ino, st.st_mtime_ns)


def test_a_killed_worker_is_replaced_and_its_file_redone(ray_cluster, tmp_path):
    files = sorted(AMI.glob("*.wav"))  # 14 files of 30 s
    folder = inputs(tmp_path, files)
    expected = outputs(local(tmp_path, "vad", str(folder)))
    out = tmp_path / "ray"
    seen: dict[str, tuple[int, int]] = {}
    killed, workers, polls = None, set(), 0
    with driver("vad", str(folder), "--output-dir", str(out), "--ray", ray_cluster) as process:
        deadline = time.monotonic() + RUN_TIMEOUT
        while process.poll() is None and time.monotonic() < deadline:
            _watch(out, seen)
            if polls % 5 == 0 or (killed is None and len(seen) >= 2):
                workers |= _map_workers()
            if killed is None and len(seen) >= 2 and workers:
                killed = min(workers)
                os.kill(killed, signal.SIGKILL)  # mid-run: the others still to do
                done_at_kill = len(seen)
            polls += 1
            time.sleep(0.1)
        _, stderr = process.communicate(timeout=30)
    assert killed is not None and done_at_kill < len(files)
    assert process.returncode == 0, stderr
    _watch(out, seen)
    assert outputs(out) == expected  # nothing lost
    for name, stamp in seen.items():  # nothing written twice: each file renamed in once
        st = (out / name).stat()
        assert (st.st_ino, st.st_mtime_ns) == stamp, name
    # a file the killed worker had already renamed into place counts as skipped when its
    # task is retried (seen under load in CI): complete either way, and written once (above)
    summary = re.search(r"powerseg: (\d+) done, (\d+) skipped \(output exists\), (\d+) failed",
                        stderr)
    assert summary, stderr
    done, skipped, failed = map(int, summary.groups())
    assert failed == 0 and done + skipped == len(files), stderr
    assert len(workers) >= 3, workers  # two, and the one that replaced the killed one
    assert not [p for p in out.iterdir() if p.name.endswith(".part")]


def test_a_killed_driver_leaves_only_complete_outputs_and_a_rerun_finishes(ray_cluster,
                                                                           tmp_path):
    files = sorted(AMI.glob("*.wav"))
    folder = inputs(tmp_path, files)
    expected = outputs(local(tmp_path, "diarize", str(folder)))
    out = tmp_path / "ray"
    args = ["diarize", str(folder), "--output-dir", str(out), "--ray", ray_cluster]
    with driver(*args, stderr=subprocess.DEVNULL) as process:
        outputs_appear(process, out, ".rttm", 2)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    time.sleep(5)  # the cluster notices the dead driver and ends its workers
    partial = outputs(out)
    assert 2 <= len(partial) < len(files)
    for name, data in partial.items():  # whatever has an output's name is complete
        assert data == expected[name], name
    done = powerseg(*args)
    assert done.returncode == 0, done.stderr
    finished = len(partial)
    assert outputs(out) == expected
    assert not [p for p in out.iterdir() if p.name.endswith(".part")]
    summary = json.loads((out / "_powerseg_summary.json").read_text())
    assert len(summary["done"]) + len(summary["skipped"]) == len(files)
    assert len(summary["skipped"]) >= finished


def test_sigterm_while_connecting_ends_the_job_and_says_so(ray_cluster, tmp_path):
    """SIGTERM at moments from the imports through ray.init to the first results: each time
    143 and the one line (Ray's own handler, installed by ray.init, exited 15 silently)."""
    folder = inputs(tmp_path, sorted(AMI.glob("*.wav"))[:4])
    for index, delay in enumerate((0.0, 0.2, 0.4, 0.6, 0.9, 1.2)):  # after the start-up
        out = tmp_path / f"out{index}"
        with driver("vad", str(folder), "--output-dir", str(out), "--ray", ray_cluster) as process:
            started(process)
            time.sleep(delay)
            if process.poll() is not None:
                break  # finished before this moment: later moments are no different
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
        err = process.stderr.read()
        assert process.returncode == 143, (delay, err)
        assert err.splitlines()[-1].startswith("powerseg: interrupted"), (delay, err)
        assert "Traceback" not in err, (delay, err)


@pytest.mark.parametrize("number, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signalled_driver_ends_the_job_and_says_so(ray_cluster, tmp_path, number, code):
    """Ctrl-C (or SIGTERM) at the driver: the job ended, no temporary file, the finished
    outputs intact, one line, 130 (143); a rerun finishes the rest."""
    files = sorted(AMI.glob("*.wav"))
    folder = inputs(tmp_path, files)
    expected = outputs(local(tmp_path, "vad", str(folder)))
    out = tmp_path / "ray"
    args = ["vad", str(folder), "--output-dir", str(out), "--ray", ray_cluster]
    with driver(*args) as process:
        outputs_appear(process, out, ".rttm", 2)
        sent = time.monotonic()
        process.send_signal(number)
        process.wait(timeout=60)
        seconds = time.monotonic() - sent
    err = process.stderr.read()
    assert process.returncode == code, err
    assert err.splitlines()[-1].startswith("powerseg: interrupted: "), err
    assert seconds < 2, f"{seconds:.2f} s from the signal to the exit"
    partial = outputs(out)
    assert 2 <= len(partial) < len(files)
    assert all(data == expected[name] for name, data in partial.items())
    time.sleep(5)  # whatever a worker still held is gone with the job
    assert not [p for p in out.iterdir() if p.name.endswith(".part")]
    done = powerseg(*args)
    assert done.returncode == 0, done.stderr
    assert outputs(out) == expected
