"""Batch jobs on a Ray cluster: ``vad``, ``osd``, ``scores``, ``diarize`` and ``embed`` over many inputs.

Ray Data's batch inference with an actor pool: each worker actor loads the models once
(``batch.Task.producer``, the very code of the local batch mode, so a file's output bytes are the
same here and there), one input per task, streaming with backpressure; a worker process that dies
is replaced and its input redone (Ray Data restarts actors and retries their tasks).

Outputs go to a folder every worker sees (a shared filesystem) or to any filesystem URI pyarrow or
fsspec can open (``s3://``, ``gs://``, ``hdfs://``, ``abfs://``...). Each is written under a
temporary hidden name (``.NAME.XXXXXXXX.part``) and renamed when complete; an input whose output
exists is skipped (unless ``overwrite``), both by the driver before the run and by the worker just
before the work, so a retried input is never written twice and a rerun resumes. A bad input is
caught in the worker and reported once: in the returned ``Summary`` and in ``_powerseg_summary.json``
in the output folder (path and reason).

Inputs are paths every worker can read (the same shared filesystem); the driver lists folders and
lists. Needs ``pip install 'powerseg[ray]'`` on the driver and every node.
"""

from __future__ import annotations

import os
import signal
import threading
import uuid
from pathlib import Path

from powerseg import batch
from powerseg.errors import OptionError, OutputError, PowersegError
from powerseg.signals import held

SUMMARY_NAME = batch.SUMMARY_NAME
PART_SUFFIX = ".part"


def _ray():
    try:
        import ray
        import ray.data
    except ImportError as error:
        raise PowersegError(f"--ray needs Ray: pip install 'powerseg[ray]' ({error})") from None
    return ray


def filesystem(uri: str):
    """(pyarrow filesystem, root path in it) for a local folder or a filesystem URI."""
    import pyarrow.fs

    if "://" not in uri:
        return pyarrow.fs.LocalFileSystem(), os.path.abspath(uri)
    try:
        return pyarrow.fs.FileSystem.from_uri(uri)
    except (pyarrow.ArrowInvalid, pyarrow.ArrowNotImplementedError, ValueError):
        pass
    try:
        import fsspec.core
    except ImportError:
        raise OptionError(f"{uri}: pyarrow cannot open this URI and fsspec is not installed"
                          ) from None
    try:
        fs, root = fsspec.core.url_to_fs(uri)
    except (ImportError, ValueError) as error:
        raise OptionError(f"{uri}: cannot open this filesystem ({error})") from None
    return pyarrow.fs.PyFileSystem(pyarrow.fs.FSSpecHandler(fs)), root


def _join(root: str, name: str) -> str:
    return f"{root.rstrip('/')}/{name}"


class Worker:
    """One Ray actor: the models loaded once; each call does a batch of (input, output name)."""

    def __init__(self, task: batch.Task, output: str, overwrite: bool, cpus: float):
        if task.model.threads is None:
            # "threads=None: one per core" means the cores Ray gave this worker, not the node's:
            # the options (and so the output bytes) stay those of the local run, and workers
            # sharing a node do not each start a thread per core of the node.
            cores = max(1, int(cpus))
            os.cpu_count = lambda: cores  # this process runs nothing but this actor
        self.produce = task.producer()
        self.fs, self.root = filesystem(output)
        self.overwrite = overwrite

    def __call__(self, rows: dict) -> dict:
        status, detail = [], []
        for path, name in zip(rows["input"], rows["name"]):
            outcome, reason = self.one(Path(str(path)), str(name))
            status.append(outcome)
            detail.append(reason)
        return {"input": rows["input"], "name": rows["name"], "status": status, "detail": detail}

    def one(self, path: Path, name: str) -> tuple[str, str]:
        import pyarrow.fs

        target = _join(self.root, name)
        if not self.overwrite and \
                self.fs.get_file_info(target).type != pyarrow.fs.FileType.NotFound:
            return "skipped", ""  # e.g. a retry of an input whose worker died after the rename
        try:
            data = self.produce(path)
        except PowersegError as error:
            return "failed", str(error)
        except Exception as error:  # a bug: reported for this input, the others go on
            return "failed", f"{path}: internal error: {type(error).__name__}: {error}"
        tmp = _join(self.root, f".{name}.{uuid.uuid4().hex[:8]}{PART_SUFFIX}")
        try:
            with self.fs.open_output_stream(tmp) as f:
                f.write(data)
            self.fs.move(tmp, target)
        except OSError as error:
            try:
                self.fs.delete_file(tmp)
            except OSError:
                pass
            return "failed", f"{target}: cannot write the output file ({error}); nothing written"
        return "done", ""


def _listing(fs, root: str) -> list[str]:
    """Names in the output folder (one listing, also on object stores)."""
    import pyarrow.fs

    try:
        infos = fs.get_file_info(pyarrow.fs.FileSelector(root, allow_not_found=True))
    except OSError as error:
        raise OutputError(f"{root}: cannot list the output folder ({error})") from None
    return [info.base_name for info in infos if info.type == pyarrow.fs.FileType.File]


def run(task: batch.Task, files: list[Path], output: str | os.PathLike, address: str = "auto",
        workers: int | None = None, cpus_per_worker: float = 1.0, gpus_per_worker: float = 0.0,
        overwrite: bool = False) -> batch.Summary:
    """``task`` for each of ``files`` on the Ray cluster at ``address``, one output per input in
    ``output`` (a folder all workers see, or a filesystem URI); returns the run's Summary."""
    task.validate()
    output = os.fspath(output)
    fs, root = filesystem(output)
    targets = batch.output_paths(files, Path("."), task.suffix)  # names, clashes refused
    if not targets:
        raise batch.AudioNotFoundError("no input files")
    batch.check_summary_name(targets.values())
    try:
        fs.create_dir(root, recursive=True)
    except OSError as error:
        raise OutputError(f"{output}: cannot create the output folder ({error})") from None
    names = {target.name for target in targets.values()}
    _remove_parts(fs, root, names)  # a killed run's (never a finished output's name)
    finished = set(_listing(fs, root))
    summary = batch.Summary()
    todo = []
    for path, target in targets.items():
        if target.name in finished and not overwrite:
            summary.skipped.append(path)
        else:
            todo.append({"input": str(path.absolute()), "name": target.name})
    by_input = {str(path.absolute()): path for path in targets}
    if todo:
        try:
            _run_on_ray(task, todo, output, address, workers, cpus_per_worker,
                        gpus_per_worker, overwrite, summary, by_input)
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the job is ended by now
            _remove_parts(fs, root, names)
            raise batch.Interrupted(summary, len(targets)) from None
    _write_summary(fs, root, summary)
    return summary


def _remove_parts(fs, root: str, names: set[str]) -> None:
    """Delete the temporary files of ``names`` in the output folder (a killed run's)."""
    for stale in _listing(fs, root):
        if stale.startswith(".") and stale.endswith(PART_SUFFIX) and \
                stale[1:].rsplit(".", 2)[0] in names:
            try:
                fs.delete_file(_join(root, stale))
            except OSError:
                pass


def _connect(ray, address: str) -> None:
    """``ray.init(address)`` with the caller's SIGTERM handler left in place.

    ray.init installs its own (an exit with code 15 and no message) in the main thread, and a
    SIGTERM during the connection would meet it. When connecting, powerseg keeps it from being
    installed (through ``ray._private.utils.set_sigterm_handler``, where Ray 2.60 installs it;
    the caller's handler is put back afterwards in any case), so the signal ends the job as
    Ctrl-C does; a local cluster that ``address="local"`` starts keeps Ray's, which stops it."""
    import logging

    main = threading.current_thread() is threading.main_thread()
    sigterm = signal.getsignal(signal.SIGTERM) if main else None
    utils = getattr(getattr(ray, "_private", None), "utils", None)
    keep = main and address != "local" and hasattr(utils, "set_sigterm_handler")
    if keep:
        install, utils.set_sigterm_handler = utils.set_sigterm_handler, lambda handler: None
    try:
        ray.init(address=address, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise PowersegError(f"--ray {address}: cannot connect to the Ray cluster ({error})"
                            ) from None
    finally:
        if keep:
            utils.set_sigterm_handler = install
        if sigterm is not None:
            signal.signal(signal.SIGTERM, sigterm)


def _run_on_ray(task, todo, output, address, workers, cpus, gpus, overwrite, summary, by_input):
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    started = False
    try:
        with held():  # importing Ray is not cut short (powerseg/signals.py)
            ray = _ray()
        started = not ray.is_initialized()
        if started:  # not held: connecting to an unreachable cluster may never return
            _connect(ray, address)
        with held():  # nor is making the dataset: a signal is raised once it is made
            if workers is None:
                resources = ray.cluster_resources()
                if gpus > 0:
                    workers = int(resources.get("GPU", 0) // gpus)
                else:
                    workers = int(resources.get("CPU", 1) // cpus)
                workers = max(1, min(workers, len(todo)))
            context = ray.data.DataContext.get_current()
            context.enable_progress_bars = True
            dataset = ray.data.from_items(todo, override_num_blocks=len(todo))
            dataset = dataset.map_batches(
                Worker, fn_constructor_args=(task, output, overwrite, cpus), batch_size=1,
                batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=workers),
                num_cpus=cpus, num_gpus=gpus or None)
        rows = iter(dataset.iter_rows())
        try:
            for row in rows:
                path = by_input[str(row["input"])]
                if row["status"] == "done":
                    summary.done.append(path)
                elif row["status"] == "skipped":
                    summary.skipped.append(path)
                else:
                    summary.failed.append((path, str(row["detail"])))
        except ray.exceptions.RayError as error:
            # e.g. the models cannot be loaded: the workers' constructor failed
            cause = getattr(error, "cause", None) or error
            if isinstance(cause, PowersegError):
                raise cause from None
            raise PowersegError(f"the Ray job failed: {str(cause).strip().splitlines()[-1]}"
                                ) from None
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM (the CLI ignores a second one meanwhile)
            _end(dataset)
            rows.close()
            raise
    finally:
        if started and ray.is_initialized():
            ray.shutdown()


def _end(dataset) -> None:
    """Stop the dataset's execution now, worker actors included, while still connected.

    Ray Data reads its results in a background thread, which a KeyboardInterrupt in the main
    thread does not reach: left alone, the executor would be shut down only when garbage
    collected, after ``ray.shutdown()``, and would print a traceback as it reconnected. Its
    handle is private (``_current_executor``, set once the first result is in; before that, an
    interrupt lands in the main thread, where Ray Data shuts the executor down itself)."""
    executor = getattr(dataset, "_current_executor", None)
    if executor is not None:
        executor.shutdown(force=True)


def _write_summary(fs, root: str, summary: batch.Summary) -> None:
    tmp = _join(root, f".{SUMMARY_NAME}.{uuid.uuid4().hex[:8]}{PART_SUFFIX}")
    try:
        with fs.open_output_stream(tmp) as f:
            f.write(summary.json().encode("utf-8"))
        fs.move(tmp, _join(root, SUMMARY_NAME))
    except OSError as error:
        raise OutputError(f"{root}: cannot write {SUMMARY_NAME} ({error})") from None
