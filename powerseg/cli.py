"""Command line: ``powerseg vad|osd|diarize|stream|scores|segment|embed|export|plot|eval|info|sample``.

Exit codes: 0 success, 1 a bad input or failed run (one line on stderr), 2 usage error.
A traceback is printed only with ``--debug``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from powerseg import __version__
from powerseg.errors import OptionError, PowersegError, ProviderError
from powerseg.runtime.diarizer import PRESETS

EXIT_INPUT, EXIT_USAGE = 1, 2
STEP = 1.0  # pyannote's: 10 % of the 10 s window


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def _model_options(parser: argparse.ArgumentParser, soft: bool = True,
                   step: float | None = STEP) -> None:
    """``step=None`` for diarization: the preset's step unless --step is given."""
    group = parser.add_argument_group("model")
    group.add_argument("--model", default="fp32",
                       help="fp32 (default), int8, fp16 (for GPUs), or an .onnx path")
    group.add_argument("--step", type=_positive_float, default=step,
                       help="seconds between 10 s windows (default 1.0, as pyannote)")
    group.add_argument("--batch-size", type=_positive_int, default=2,
                       help="windows per model call, one call per core at a time (default 2; "
                       "larger uses more memory for no speed on CPU)")
    group.add_argument("--threads", type=_positive_int, default=None,
                       help="onnxruntime threads (default: one per core)")
    group.add_argument("--provider", default="auto", help="auto (default), cpu, cuda, or an "
                       "onnxruntime provider name")
    group.add_argument("--no-shared-front", dest="shared_front", action="store_false",
                       help="run the full model on every window, not fp32/int8's shared "
                       "front-end pair (the sinc convolution once over the signal; same scores)")
    if soft:
        group.add_argument("--soft", action="store_true",
                           help="soft powerset decoding (probabilities) instead of argmax")


def _binarize_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("regions")
    group.add_argument("--onset", type=float, default=0.5)
    group.add_argument("--offset", type=float, default=None, help="default: same as --onset")
    group.add_argument("--min-duration-on", type=_non_negative_float, default=0.0)
    group.add_argument("--min-duration-off", type=_non_negative_float, default=0.0)
    group.add_argument("--pad-onset", type=_non_negative_float, default=0.0)
    group.add_argument("--pad-offset", type=_non_negative_float, default=0.0)


def _diarization_options(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group("speakers")
    group.add_argument("--num-speakers", type=_positive_int, default=None,
                       help="the number of speakers, when known")
    group.add_argument("--min-speakers", type=_positive_int, default=None)
    group.add_argument("--max-speakers", type=_positive_int, default=None)
    group.add_argument("--threshold", type=_positive_float, default=None,
                       help="clustering distance threshold (default 0.86, tuned for CAM++)")
    group.add_argument("--min-cluster-size", type=_positive_int, default=None,
                       help="clusters smaller than this merge into the closest large one "
                       "(default 12)")
    group.add_argument("--preset", choices=tuple(PRESETS), default="pyannote",
                       help="pyannote (default): pyannote's settings; fast: step 2 s and "
                       "min-cluster-size 6, half the work (its DER cost is in the README); "
                       "options given override it")
    group.add_argument("--embedding", default="campplus",
                       help="speaker-embedding model: campplus (default) or an .onnx path")


def _batch_arguments(p: argparse.ArgumentParser, formats: tuple[str, ...] = ("rttm", "json"),
                     required: bool = False) -> None:
    p.add_argument("audio", nargs="+", type=Path,
                   help="audio files, folders (searched recursively) or .txt/.lst lists")
    out = p.add_mutually_exclusive_group(required=required)
    out.add_argument("--output", "-o", type=Path,
                     help="one output file" + ("" if required else " (default: stdout)"))
    out.add_argument("--output-dir",
                     help="one output file per input, named after it; existing ones are "
                     "skipped (resumable) unless --overwrite. With --ray: a folder all workers "
                     "see, or a filesystem URI (s3://, gs://, ...)")
    if len(formats) > 1:
        p.add_argument("--format", choices=formats, default=None,
                       help="default: from the output suffix, else rttm")
    p.add_argument("--jobs", type=_positive_int, default=1, help="files processed at once")
    p.add_argument("--overwrite", action="store_true")
    ray = p.add_argument_group("Ray cluster (with --output-dir; needs powerseg[ray])")
    ray.add_argument("--ray", metavar="ADDRESS", default=None,
                     help="run on this Ray cluster (host:port, ray://host:10001, or auto: the "
                     "one running here) instead of --jobs on this machine")
    ray.add_argument("--ray-workers", type=_positive_int, default=None,
                     help="worker actors, each loading the models once (default: as many as "
                     "the cluster's CPUs (GPUs) allow)")
    ray.add_argument("--ray-cpus-per-worker", type=_positive_float, default=1.0,
                     help="CPUs each worker reserves (default 1); also its model threads "
                     "unless --threads is given")
    ray.add_argument("--ray-gpus-per-worker", type=_non_negative_float, default=0.0,
                     help="GPUs each worker reserves (default 0); use with --provider cuda")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="powerseg", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"powerseg {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    for name, what in (("vad", "speech"), ("osd", "overlapped speech")):
        p = sub.add_parser(name, help=f"{what} regions as RTTM or JSON")
        _batch_arguments(p)
        _model_options(p)
        _binarize_options(p)

    p = sub.add_parser("diarize", help="who spoke when: speaker turns as RTTM or JSON "
                       "(pyannote's SpeakerDiarization)")
    _batch_arguments(p)
    _diarization_options(p)
    p.add_argument("--exclusive", action="store_true",
                   help="at most one speaker at a time (pyannote's exclusive diarization)")
    p.add_argument("--min-duration-off", type=_non_negative_float, default=0.0,
                   help="fill a speaker's gaps shorter than this (seconds)")
    _model_options(p, soft=False, step=None)

    p = sub.add_parser("stream", help="speech/overlap events from live audio, printed as they "
                       "become final (about 10 s after they were heard)")
    p.add_argument("audio", help="'-': raw signed 16-bit little-endian 16 kHz mono PCM on stdin "
                   "(a .raw/.pcm path: the same from a file); other paths: any audio file")
    p.add_argument("--events", choices=("both", "speech", "overlap"), default="both")
    p.add_argument("--block", type=_positive_float, default=0.1,
                   help="seconds of audio read at a time (default 0.1)")
    _model_options(p)
    _binarize_options(p)

    p = sub.add_parser("scores", help="aggregated speech/overlap scores per frame (npz)")
    _batch_arguments(p, formats=("npz",), required=True)
    _model_options(p)

    p = sub.add_parser("segment", help="per-chunk speaker activations (npz)")
    p.add_argument("audio", type=Path)
    p.add_argument("--output", "-o", type=Path, required=True)
    _model_options(p)

    p = sub.add_parser("export", help="checkpoint -> verified ONNX (needs powerseg[export])")
    p.add_argument("--checkpoint", required=True,
                   help="pytorch_model.bin, or pyannote/segmentation-3.0 (needs huggingface_hub)")
    p.add_argument("--output", "-o", type=Path, required=True)
    p.add_argument("--quantize", choices=("int8", "fp16"), nargs="*", default=[],
                   help="also write these variants beside the fp32 file")
    p.add_argument("--audio", type=Path, nargs="*", default=None,
                   help="audio to verify on; default: the bundled recording")
    p.add_argument("--token", default=None, help="Hugging Face token for the hub id")
    p.add_argument("--embedding-checkpoint", type=Path, default=None,
                   help="also export this CAM++ state dict (campplus_cn_en_common.pt) as "
                   "campplus.onnx beside --output, verified on the same audio")

    p = sub.add_parser("plot", help="PNG: the model card's figure for <= 10 s, scores and "
                       "regions for longer spans (needs powerseg[plot])")
    p.add_argument("audio", type=Path)
    p.add_argument("--output", "-o", type=Path, required=True)
    p.add_argument("--start", type=_non_negative_float, default=0.0)
    p.add_argument("--end", type=_positive_float, default=None,
                   help="default: start + 10 s (one window); the whole file with --diarization")
    p.add_argument("--diarization", action="store_true",
                   help="speaker turns under the waveform, one row per speaker")
    _diarization_options(p)
    p.add_argument("--min-duration-off", type=_non_negative_float, default=0.0)
    _model_options(p, step=None)

    p = sub.add_parser("eval", help="detection error rate of VAD and OSD, or diarization error "
                       "rate (--diarization), against reference RTTM")
    p.add_argument("audio", nargs="+", type=Path, help="audio files, folders or lists")
    p.add_argument("--reference", nargs="+", type=Path, required=True,
                   help="RTTM files; recordings are matched by file stem (URI)")
    p.add_argument("--uem", type=Path, default=None, help="scored regions (default: whole files)")
    p.add_argument("--task", choices=("vad", "osd"), nargs="+", default=["vad", "osd"])
    p.add_argument("--metric", choices=("powerseg", "pyannote"), default="powerseg",
                   help="pyannote: compute with pyannote.metrics (needs powerseg[eval])")
    p.add_argument("--output", "-o", type=Path, default=None, help="JSON report")
    p.add_argument("--diarization", action="store_true",
                   help="score speaker diarization (who spoke when) instead of VAD/OSD")
    p.add_argument("--exclusive", action="store_true", help="with --diarization: score the "
                   "exclusive output (one speaker at a time)")
    _diarization_options(p)
    _model_options(p, step=None)
    _binarize_options(p)

    p = sub.add_parser("embed", help="one speaker embedding per file, whole file (npz)")
    p.add_argument("audio", nargs="+", type=Path,
                   help="audio files, folders (searched recursively) or .txt/.lst lists")
    p.add_argument("--output", "-o", type=Path, required=True,
                   help="npz: embeddings (files, 192) float32, uris, num_frames")
    p.add_argument("--model", default="campplus", help="campplus (default) or an .onnx path")
    p.add_argument("--threads", type=_positive_int, default=None,
                   help="onnxruntime runs at once (default: one per core)")
    p.add_argument("--provider", default="auto", help="auto (default), cpu, cuda, or an "
                   "onnxruntime provider name")

    p = sub.add_parser("info", help="model metadata, providers and versions")
    p.add_argument("--model", default="fp32")
    p.add_argument("--embedding-model", default="campplus")

    sub.add_parser("sample", help="print the path of the bundled recording")
    return parser


def _segmenter(args: argparse.Namespace):
    from powerseg.runtime import Segmenter

    step = STEP if args.step is None else args.step  # None: eval/plot's diarization preset
    return Segmenter(model=args.model, step=step, batch_size=args.batch_size,
                     threads=args.threads, providers=args.provider, soft=args.soft,
                     shared_front=args.shared_front)


def _binarize(args: argparse.Namespace):
    from powerseg.runtime import BinarizeOptions

    return BinarizeOptions(args.onset, args.offset, args.min_duration_on,
                           args.min_duration_off, args.pad_onset, args.pad_offset)


def _task(args: argparse.Namespace):
    """The command line's per-input work as a ``batch.Task`` (the same locally and on Ray)."""
    from powerseg.batch import Task

    segmenter = dict(model=args.model, step=args.step, batch_size=args.batch_size,
                     threads=args.threads, providers=args.provider,
                     shared_front=args.shared_front)
    if args.command == "scores":
        task = Task("scores", "npz", dict(segmenter, soft=args.soft))
    else:
        suffix = (args.output or Path(args.output_dir or "")).suffix
        fmt = args.format or ("json" if suffix == ".json" else "rttm")
        if args.command == "diarize":
            task = Task("diarize", fmt, _diarizer_options(args), speakers=_speakers(args),
                        exclusive=args.exclusive)
        else:
            task = Task(args.command, fmt, dict(segmenter, soft=args.soft), binarize=dict(
                onset=args.onset, offset=args.offset, min_duration_on=args.min_duration_on,
                min_duration_off=args.min_duration_off, pad_onset=args.pad_onset,
                pad_offset=args.pad_offset))
    task.validate()  # a usage error before any file is read or any model loaded
    return task


def _regions(args: argparse.Namespace) -> int:
    return _write_results(args, _task(args))


def _diarizer_options(args: argparse.Namespace) -> dict:
    """The Diarizer's keyword arguments: the preset's, then the options given."""
    given = dict(step=args.step, threshold=args.threshold, min_cluster_size=args.min_cluster_size)
    return {**PRESETS[args.preset], **{k: v for k, v in given.items() if v is not None},
            "segmentation": args.model, "embedding": args.embedding,
            "min_duration_off": args.min_duration_off, "batch_size": args.batch_size,
            "threads": args.threads, "providers": args.provider,
            "shared_front": args.shared_front}


def _diarizer(args: argparse.Namespace):
    from powerseg.runtime import Diarizer

    return Diarizer(**_diarizer_options(args))


def _diarize(args: argparse.Namespace) -> int:
    return _write_results(args, _task(args))


def _batch(args: argparse.Namespace, task) -> int:
    """One output per input in ``--output-dir``: here (``--jobs``) or on a Ray cluster
    (``--ray``); resumable, a bad input reported and skipped, one summary line at the end."""
    from powerseg import batch

    files = batch.expand(args.audio)
    if args.ray:
        from powerseg import cluster

        summary = cluster.run(task, files, args.output_dir, address=args.ray,
                              workers=args.ray_workers, cpus_per_worker=args.ray_cpus_per_worker,
                              gpus_per_worker=args.ray_gpus_per_worker, overwrite=args.overwrite)
        for path, reason in summary.failed:  # after Ray's progress bars, each once
            print(f"powerseg: error: {reason}", file=sys.stderr)
    else:
        if "://" in args.output_dir:
            raise OptionError(f"--output-dir {args.output_dir}: a filesystem URI needs --ray; "
                              "here, give a folder")
        produce = task.producer()
        summary = batch.run(files, Path(args.output_dir), task.suffix,
                            lambda path, target: batch.write_bytes(target, produce(path)),
                            args.jobs, args.overwrite,
                            report=lambda path, error: _report(error, args))
    print(summary.line(), file=sys.stderr)
    return EXIT_INPUT if summary.failed else 0


def _write_results(args: argparse.Namespace, task) -> int:
    """RTTM or JSON for each input, to stdout, one file, or one file per input
    (``--output-dir``, resumable); a bad input is reported and skipped."""
    from powerseg import batch
    from powerseg.runtime.writers import dumps_json

    if args.ray and not args.output_dir:
        raise OptionError("--ray writes one output per input: give --output-dir")
    if args.output_dir:
        return _batch(args, task)
    files = batch.expand(args.audio)
    produce = task.producer()
    rttm, documents, failed = [], [], 0
    for path in files:
        try:
            lines, document = produce.records(path)
        except PowersegError as error:
            _report(error, args)
            failed += 1
            continue
        rttm += lines
        documents.append(document)
    text = "".join(rttm) if task.format == "rttm" else dumps_json(
        documents[0] if len(files) == 1 and documents else documents)
    if documents:
        _emit(args.output, text)
    return EXIT_INPUT if failed else 0


def _plot(args: argparse.Namespace) -> int:
    from powerseg.plot import plot

    if args.diarization:
        plot(args.audio, args.output, args.start, args.end, diarizer=_diarizer(args))
    else:
        plot(args.audio, args.output, args.start, args.end, _segmenter(args))
    print(args.output)
    return 0


def _eval(args: argparse.Namespace) -> int:
    from powerseg import batch
    from powerseg.evaluate import evaluate, evaluate_diarization, overall, table
    from powerseg.runtime.writers import dumps_json, write_text

    audio = batch.expand(args.audio)
    if args.diarization:
        if args.soft:
            raise OptionError("--soft does not apply to --diarization (pyannote's pipeline "
                              "decodes the segmentation hard)")
        scores = evaluate_diarization(_diarizer(args), audio, args.reference, args.uem,
                                      args.metric, args.exclusive, **_speakers(args))
        tasks = ["diarization"]
    else:
        scores = evaluate(_segmenter(args), audio, args.reference, args.uem, tuple(args.task),
                          _binarize(args), args.metric)
        tasks = args.task
    sys.stdout.write(table(scores))
    if args.output:
        totals = [overall(scores, task).as_dict() for task in tasks]
        write_text(args.output, dumps_json({"metric": args.metric, "files": [
            s.as_dict() for s in scores], "overall": totals}))
    return 0


def _speakers(args: argparse.Namespace) -> dict:
    return dict(num_speakers=args.num_speakers, min_speakers=args.min_speakers,
                max_speakers=args.max_speakers)


def _stream(args: argparse.Namespace) -> int:
    """Print ``speech START END`` / ``overlap START END`` lines as regions become final."""
    import numpy as np

    from powerseg.runtime.audio import blocks

    options = _binarize(args)
    segmenter = _segmenter(args)
    rate = segmenter.spec.sample_rate
    stream = segmenter.stream(vad=options if args.events != "overlap" else None,
                              osd=options if args.events != "speech" else None)

    def show(part) -> None:
        for region in part.events:
            print(f"{region.label.lower()} {region.start:.3f} {region.end:.3f}", flush=True)

    block = max(1, round(args.block * rate))  # samples per push
    raw = args.audio == "-" or Path(args.audio).suffix.lower() in (".raw", ".pcm")
    if raw:
        from contextlib import nullcontext

        size = 2 * block  # bytes of s16le
        left = b""
        with nullcontext(sys.stdin.buffer) if args.audio == "-" else open(args.audio, "rb") as f:
            read = getattr(f, "read1", f.read)  # returns what a pipe has, without waiting
            while data := read(size):
                data = left + data
                cut = len(data) - len(data) % 2
                left = data[cut:]
                show(stream.push(np.frombuffer(data[:cut], dtype="<i2")))
    else:
        for samples in blocks(Path(args.audio), rate):
            for begin in range(0, len(samples), block):
                show(stream.push(samples[begin:begin + block]))
    show(stream.flush())
    return 0


def _emit(output: Path | None, text: str) -> None:
    from powerseg.runtime.writers import write_text

    if output is None:
        sys.stdout.write(text)
    else:
        write_text(output, text)


def _scores(args: argparse.Namespace) -> int:
    from powerseg.runtime.writers import scores_npz, segment_npz, write_npz

    if args.command == "scores":
        if args.output_dir:
            return _batch(args, _task(args))
        if args.ray:
            raise OptionError("--ray writes one output per input: give --output-dir")
        from powerseg import batch

        files = batch.expand(args.audio)
        if len(files) != 1:
            raise OptionError(f"{len(files)} inputs and one --output: give --output-dir for "
                              "one npz per input")
        args.audio = files[0]
    result = _segmenter(args)(args.audio, activations=args.command == "segment")
    write_npz(args.output, scores_npz(result) if args.command == "scores" else segment_npz(result))
    return 0


def _export(args: argparse.Namespace) -> int:
    try:
        from powerseg.export.build import build
    except ImportError as error:
        raise PowersegError(f"export needs torch and onnx: pip install 'powerseg[export]' "
                            f"({error})") from None
    command = "powerseg " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    manifest = build(args.checkpoint, args.output, args.quantize, args.audio, args.token, command,
                     args.embedding_checkpoint)
    for name, entry in manifest["files"].items():
        parity = entry.get("parity_vs_torch") or entry.get("parity_vs_fp32") or \
            entry.get("parity_vs_full")
        if entry.get("role") == "shared_front":
            print(f"{args.output.parent / name}: the shared front-end of the .tail.onnx files")
            continue
        if entry["kind"] != "segmentation":
            print(f"{args.output.parent / name}: {entry['kind']}, max difference from torch "
                  f"{parity['max_abs_diff']:.2e}, lowest cosine {parity['min_cosine']:.7f}")
            continue
        print(f"{args.output.parent / name}: {entry['variant']}, argmax agreement "
              f"{parity['argmax_agreement']:.4%}, worst probability difference {parity['worst']:.2e}")
    return 0


def _embed(args: argparse.Namespace) -> int:
    """One whole-file embedding per input into one npz; bad inputs reported and skipped."""
    import numpy as np

    from powerseg import batch
    from powerseg.runtime import Embedder
    from powerseg.runtime.writers import uri_of, write_npz

    embedder = Embedder(args.model, threads=args.threads, providers=args.provider)
    done, failed = [], 0
    for path in batch.expand(args.audio):
        try:
            done.append((path, embedder.embed(path)))
        except PowersegError as error:
            _report(error, args)
            failed += 1
    if done:
        write_npz(args.output, {
            "embeddings": np.stack([e.vector for _, e in done]),
            "uris": np.array([uri_of(path) for path, _ in done]),
            "num_frames": np.array([e.num_frames for _, e in done], dtype=np.int32),
        })
    return EXIT_INPUT if failed else 0


def _info(args: argparse.Namespace) -> int:
    import numpy
    import onnxruntime

    from powerseg.runtime.cpu import cpu_info
    from powerseg.runtime.embedder import EmbeddingModel
    from powerseg.runtime.model import OnnxModel

    model = OnnxModel(args.model, providers="auto")
    print(f"powerseg {__version__}, numpy {numpy.__version__}, onnxruntime {onnxruntime.__version__}")
    print(f"cpu: {cpu_info().describe()}")
    print(f"available providers: {', '.join(onnxruntime.get_available_providers())}")
    print(f"model: {model.path}")
    print(f"provider used: {model.provider}")
    for key, value in sorted(model.spec.metadata.items()):
        print(f"  {key}: {value}")
    embedder = EmbeddingModel(args.embedding_model, providers="auto")
    print(f"embedding model: {embedder.path}")
    for key, value in sorted(embedder.spec.metadata.items()):
        print(f"  {key}: {value}")
    return 0


def _sample(args: argparse.Namespace) -> int:
    from powerseg.samples import sample_path

    print(sample_path())
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "vad": _regions, "osd": _regions, "diarize": _diarize, "stream": _stream, "scores": _scores, "segment": _scores,
    "plot": _plot, "eval": _eval, "export": _export, "embed": _embed, "info": _info,
    "sample": _sample,
}


def _report(error: BaseException, args: argparse.Namespace) -> None:
    if args.debug:
        traceback.print_exception(error)
    print(f"powerseg: error: {error}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (OptionError, ProviderError) as error:
        _report(error, args)
        return EXIT_USAGE
    except PowersegError as error:
        _report(error, args)
        return EXIT_INPUT
    except OSError as error:  # writing the output: no space, permission, a directory in the way
        _report(error, args)
        return EXIT_INPUT
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # a bug: still one line unless --debug
        if args.debug:
            traceback.print_exception(error)
        print(f"powerseg: internal error: {type(error).__name__}: {error} "
              "(rerun with --debug for the traceback)", file=sys.stderr)
        return EXIT_INPUT


if __name__ == "__main__":
    sys.exit(main())
