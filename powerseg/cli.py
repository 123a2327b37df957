"""Command line: ``powerseg vad|osd|diarize|stream|scores|segment|embed|export|plot|eval|info|sample``.

Exit codes: 0 success, 1 a bad input or failed run (one line on stderr), 2 usage error.
A traceback is printed only with ``--debug``.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import signal
import sys
import threading
import traceback
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from powerseg import __version__
from powerseg.batch import Interrupted
from powerseg.errors import OptionError, PowersegError, ProviderError
from powerseg.modes import check_modes, long_options
from powerseg.runtime import options as checks
from powerseg.runtime.diarization.presets import PRESETS
from powerseg.runtime.diarization.voices import DEFAULT_THRESHOLD as DEFAULT_VOICE_THRESHOLD
from powerseg.transcript import MAX_GAP

EXIT_INPUT, EXIT_USAGE = 1, 2
DESCRIPTION = ("Speaker segmentation, voice activity and overlapped speech detection, speaker "
               "diarization and embeddings (pyannote's models on onnxruntime).")
STEP = 1.0  # pyannote's: 10 % of the 10 s window


# the Options fields' own checks (runtime/options.py), as argparse types
_positive_float = checks.argument(checks.number(), float)
_non_negative_float = checks.argument(checks.number(positive=False), float)
_positive_int = checks.argument(checks.integer(), int)


def _threshold(text: str) -> float:
    """A score threshold: scores are probabilities, so it lies between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number from 0 to below 1, got {text!r}"
                                         ) from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be from 0 to below 1 (scores are "
                                         f"probabilities), got {text}")
    return value


def _model_options(parser: argparse.ArgumentParser, soft: bool = True,
                   step: float | None = STEP) -> None:
    """``step=None`` for diarization: the preset's step unless --step is given."""
    group = parser.add_argument_group("model")
    group.add_argument("--model", default="fp32",
                       help="fp32 (default), int8, auto (the faster of the two on this CPU, "
                       "measured once and cached), fp16 (for GPUs), or an .onnx path")
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
    group.add_argument("--onset", type=_threshold, default=0.5,
                       help="a region starts where the score rises above this (default 0.5, "
                       "pyannote's for this model)")
    group.add_argument("--offset", type=_threshold, default=None,
                       help="and ends where it falls below this (default: --onset)")
    group.add_argument("--min-duration-on", type=_non_negative_float, default=0.0,
                       help="drop regions shorter than this, seconds (default 0)")
    group.add_argument("--min-duration-off", type=_non_negative_float, default=0.0,
                       help="fill gaps shorter than this, seconds (default 0)")
    group.add_argument("--pad-onset", type=_non_negative_float, default=0.0,
                       help="start each region this many seconds earlier (default 0)")
    group.add_argument("--pad-offset", type=_non_negative_float, default=0.0,
                       help="end each region this many seconds later (default 0)")


def _diarization_options(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group("speakers")
    group.add_argument("--num-speakers", type=_positive_int, default=None,
                       help="the number of speakers, when known")
    group.add_argument("--min-speakers", type=_positive_int, default=None,
                       help="at least this many speakers (default: no bound)")
    group.add_argument("--max-speakers", type=_positive_int, default=None,
                       help="at most this many speakers (default: no bound)")
    group.add_argument("--threshold", type=_positive_float, default=None,
                       help="clustering distance threshold (default 0.86, tuned for CAM++)")
    group.add_argument("--min-cluster-size", type=_positive_int, default=None,
                       help="clusters smaller than this merge into the closest large one "
                       "(default 12)")
    group.add_argument("--preset", choices=tuple(PRESETS), default="pyannote",
                       help="pyannote (default): pyannote's settings; fast: step 3 s and "
                       "min-cluster-size 4, a third of the work; fastest: step 5 s and "
                       "min-cluster-size 2 (their DER cost is in the README); options given "
                       "override it")
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
    p.add_argument("--jobs", type=_positive_int, default=1,
                   help="files processed at once with --output-dir (default 1)")
    p.add_argument("--overwrite", action="store_true",
                   help="with --output-dir: redo inputs whose output exists (default: skip "
                   "them, so an interrupted run resumes)")
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
    parser = argparse.ArgumentParser(prog="powerseg", description=DESCRIPTION)
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
                   help="fill a speaker's gaps shorter than this, seconds (default 0)")
    _model_options(p, soft=False, step=None)
    _voice_options(p, embeddings=True)

    p = sub.add_parser("stream", help="live audio: speech/overlap events as they become final "
                       "(about 10 s after they were heard), or with --diarization speaker turns "
                       "(--latency s after)")
    p.add_argument("audio", help="'-': raw signed 16-bit little-endian 16 kHz mono PCM on stdin "
                   "(a .raw/.pcm path: the same from a file); other paths: any audio file")
    p.add_argument("--events", choices=("both", "speech", "overlap"), default="both",
                   help="which regions to print (default both)")
    p.add_argument("--block", type=_positive_float, default=0.1,
                   help="seconds of audio read at a time (default 0.1)")
    live = p.add_argument_group("live diarization")
    live.add_argument("--diarization", action="store_true",
                      help="who speaks: speaker turns (RTTM lines) as they become final, "
                      "--latency seconds after they are heard, instead of speech/overlap events")
    live.add_argument("--latency", type=float, default=5.0,
                      help="seconds from hearing a moment to labelling it, from the step (1 s) "
                      "to 10 (default 5); shorter means fewer windows have heard it")
    live.add_argument("--format", choices=("rttm", "jsonl"), default="rttm",
                      help="rttm (default): one RTTM line a turn; jsonl: one JSON object a turn")
    live.add_argument("--final-output", type=Path, default=None,
                      help="at the end, write what `powerseg diarize` gives for the same audio "
                      "(RTTM, or JSON for a .json path)")
    live.add_argument("--realtime", action="store_true",
                      help="read a file at real-time pace (demos, latency measurements)")
    _diarization_options(p)
    _voice_options(p)
    _model_options(p, step=None)
    _binarize_options(p)

    p = sub.add_parser("scores", help="aggregated speech/overlap scores per frame (npz)")
    _batch_arguments(p, formats=("npz",), required=True)
    _model_options(p)

    p = sub.add_parser("segment", help="per-chunk speaker activations (npz)")
    p.add_argument("audio", type=Path)
    p.add_argument("--output", "-o", type=Path, required=True,
                   help="npz: activations (chunks, 589, 3) and the chunk/frame grids")
    _model_options(p)

    p = sub.add_parser("export", help="checkpoint -> verified ONNX (needs powerseg[export])")
    p.add_argument("--checkpoint", required=True,
                   help="pytorch_model.bin, or pyannote/segmentation-3.0 (needs huggingface_hub)")
    p.add_argument("--output", "-o", type=Path, required=True,
                   help="the fp32 .onnx file to write (variants and the pair beside it)")
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
    p.add_argument("--output", "-o", type=Path, required=True,
                   help="the PNG to write")
    p.add_argument("--start", type=_non_negative_float, default=0.0,
                   help="seconds into the file where the figure starts (default 0)")
    p.add_argument("--end", type=_positive_float, default=None,
                   help="default: start + 10 s (one window); the whole file with --diarization")
    p.add_argument("--diarization", action="store_true",
                   help="speaker turns under the waveform, one row per speaker")
    _diarization_options(p)
    p.add_argument("--min-duration-off", type=_non_negative_float, default=0.0,
                   help="fill a speaker's gaps shorter than this, seconds (default 0)")
    p.add_argument("--reference", type=Path, default=None,
                   help="with --diarization: an RTTM whose turns for this file are drawn under "
                   "the hypothesis, for comparison")
    _model_options(p, step=None)

    p = sub.add_parser("eval", help="detection error rate of VAD and OSD, or diarization error "
                       "rate (--diarization), against reference RTTM")
    p.add_argument("audio", nargs="+", type=Path, help="audio files, folders or lists")
    p.add_argument("--reference", nargs="+", type=Path, action="extend", required=True,
                   help="RTTM files; recordings are matched by file stem (URI); may be repeated")
    p.add_argument("--uem", type=Path, nargs="+", action="extend", default=None,
                   help="UEM files of the scored regions, merged when several are given "
                   "(default: whole files)")
    p.add_argument("--task", choices=("vad", "osd"), nargs="+", default=["vad", "osd"],
                   help="what to score without --diarization (default: vad osd)")
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
    _batch_arguments(p, formats=("npz",), required=True)  # -o: every input's row in one npz
    p.add_argument("--model", default="campplus", help="campplus (default) or an .onnx path")
    p.add_argument("--threads", type=_positive_int, default=None,
                   help="onnxruntime runs at once (default: one per core)")
    p.add_argument("--provider", default="auto", help="auto (default), cpu, cuda, or an "
                   "onnxruntime provider name")

    _enroll_parser(sub)
    _transcript_parser(sub)

    p = sub.add_parser("info", help="model metadata, providers and versions")
    p.add_argument("--model", default="fp32",
                   help="segmentation model to describe: fp32 (default), int8, auto (says "
                   "which variant it runs here), fp16 or a path")
    p.add_argument("--embedding-model", default="campplus",
                   help="speaker-embedding model to describe: campplus (default) or a path")

    sub.add_parser("sample", help="print the path of the bundled recording")
    for command in sub.choices.values():  # --debug after the command too (SUPPRESS: not
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                             help="show tracebacks")  # resetting one given before it)
    return parser


def _segmenter_options(args: argparse.Namespace):
    from powerseg.runtime import SegmenterOptions

    step = STEP if args.step is None else args.step  # None: eval/plot's diarization preset
    return SegmenterOptions(model=args.model, step=step, batch_size=args.batch_size,
                            threads=args.threads, providers=args.provider, soft=args.soft,
                            shared_front=args.shared_front)


def _segmenter(args: argparse.Namespace):
    from powerseg.runtime import Segmenter

    return Segmenter(options=_segmenter_options(args))


def _binarize(args: argparse.Namespace):
    from powerseg.runtime import BinarizeOptions

    return BinarizeOptions(args.onset, args.offset, args.min_duration_on,
                           args.min_duration_off, args.pad_onset, args.pad_offset)


def _task(args: argparse.Namespace):
    """The command line's per-input work as a ``batch.Task`` (the same locally and on Ray)."""
    from powerseg.batch import Task

    if args.command == "scores":
        task = Task("scores", "npz", _segmenter_options(args))
    elif args.command == "embed":
        from powerseg.runtime import EmbedderOptions

        task = Task("embed", "npz", EmbedderOptions(model=args.model, threads=args.threads,
                                                    providers=args.provider))
    elif args.command == "diarize":
        task = Task("diarize", _text_format(args), _diarizer_options(args),
                    speakers=_speakers(args), exclusive=args.exclusive, **_voices(args))
    else:
        task = Task(args.command, _text_format(args), _segmenter_options(args),
                    binarize=_binarize(args))
    task.validate()  # a usage error before any file is read or any model loaded
    return task


def _text_format(args: argparse.Namespace) -> str:
    """rttm or json: --format, else the output's suffix (.json), else rttm; an output named
    for another format is refused rather than filled with text it cannot hold."""
    suffix = (args.output or Path(args.output_dir or "")).suffix.lower()
    named = {".rttm": "rttm", ".json": "json"}.get(suffix)
    if args.output and suffix in (".npz", ".png", ".wav", ".flac", ".uem"):
        raise OptionError(f"--output {args.output}: {args.command} writes RTTM or JSON; name "
                          "the output .rttm or .json")
    if args.format and args.output and named and named != args.format:
        raise OptionError(f"--format {args.format} and --output {args.output} disagree; give "
                          "one of them")
    return args.format or named or "rttm"


def _npz_output(args: argparse.Namespace) -> None:
    if args.output is not None and args.output.suffix.lower() != ".npz" and \
            not args.output.is_dir():  # a folder in the way is the writer's to name
        raise OptionError(f"--output {args.output}: {args.command} writes an npz archive; "
                          "name the output .npz")


def _regions(args: argparse.Namespace) -> int:
    return _write_results(args, _task(args))


def _diarizer_options(args: argparse.Namespace):
    """The Diarizer's options: the preset's (``DiarizerOptions.preset``), then those given."""
    from powerseg.runtime.diarization.diarizer import DiarizerOptions

    given = dict(step=args.step, threshold=args.threshold, min_cluster_size=args.min_cluster_size)
    return DiarizerOptions.preset(
        args.preset, **{k: v for k, v in given.items() if v is not None},
        segmentation=args.model, embedding=args.embedding,
        min_duration_off=args.min_duration_off, batch_size=args.batch_size,
        threads=args.threads, providers=args.provider, shared_front=args.shared_front)


def _diarizer(args: argparse.Namespace):
    from powerseg.runtime import Diarizer

    return Diarizer(options=_diarizer_options(args))


def _diarize(args: argparse.Namespace) -> int:
    if args.embeddings is not None:
        return _diarize_embeddings(args)
    return _write_results(args, _task(args))


def _batch(args: argparse.Namespace, task) -> int:
    """One output per input in ``--output-dir``: here (``--jobs``) or on a Ray cluster
    (``--ray``); resumable, a bad input reported and skipped, one summary line at the end."""
    from powerseg import batch

    files = batch.expand(args.audio)
    if args.ray:
        from powerseg import ray_runner

        summary = ray_runner.run(task, files, args.output_dir, address=args.ray,
                                 workers=args.ray_workers,
                                 cpus_per_worker=args.ray_cpus_per_worker,
                                 gpus_per_worker=args.ray_gpus_per_worker,
                                 overwrite=args.overwrite)
        for path, reason in summary.failed:  # after Ray's progress bars, each once
            _say(f"powerseg: error: {reason}")
    else:
        if "://" in args.output_dir:
            raise OptionError(f"--output-dir {args.output_dir}: a filesystem URI needs --ray; "
                              "here, give a folder")
        produce = task.producer()
        progress = _progress(len(batch.output_paths(files, Path(args.output_dir), task.suffix)))
        summary = batch.run(files, Path(args.output_dir), task.suffix,
                            lambda path, target, hook: batch.write_bytes(target,
                                                                         produce(path, hook)),
                            args.jobs, args.overwrite,
                            report=lambda path, error: _report(error, args), progress=progress)
    _say(summary.line())
    return EXIT_INPUT if summary.failed else 0


def _each(args: argparse.Namespace, files: list[Path], work: Callable) -> tuple[list, int]:
    """``work(path, hook)`` for each file in turn, with progress on a terminal; a bad input
    reported and skipped. Returns (the (path, result) pairs done, how many failed)."""
    progress = _progress(len(files))
    done, failed = [], 0
    for path in files:
        progress.start(path)
        try:
            done.append((path, work(path, lambda stage, payload, path=path:
                                    progress.update(path, payload))))
        except PowersegError as error:
            _report(error, args)
            failed += 1
        finally:
            progress.step(path)
    progress.close()
    return done, failed


def _write_results(args: argparse.Namespace, task) -> int:
    """RTTM or JSON for each input, to stdout, one file, or one file per input
    (``--output-dir``, resumable); a bad input is reported and skipped."""
    from powerseg import batch
    from powerseg.runtime.writers import dumps_json

    if args.output_dir:
        return _batch(args, task)
    files = batch.expand(args.audio)
    produce = task.producer()
    done, failed = _each(args, files, lambda path, hook: produce.records(path, hook))
    rttm = [line for _, (lines, _) in done for line in lines]
    documents = [document for _, (_, document) in done]
    text = "".join(rttm) if task.format == "rttm" else dumps_json(
        documents[0] if len(files) == 1 and documents else documents)
    if documents:
        _emit(args.output, text)
    return EXIT_INPUT if failed else 0


def _plot(args: argparse.Namespace) -> int:
    from powerseg.plot import plot

    if args.diarization:
        plot(args.audio, args.output, args.start, args.end, diarizer=_diarizer(args),
             reference=args.reference, **_speakers(args))
    else:
        plot(args.audio, args.output, args.start, args.end, _segmenter(args))
    print(args.output)
    return 0


def _eval(args: argparse.Namespace) -> int:
    from powerseg import batch
    from powerseg.evaluate import evaluate, evaluate_diarization, overall, table
    from powerseg.runtime.writers import dumps_json, write_text

    audio = batch.expand(args.audio)
    progress = _progress(len(audio))
    if args.diarization:
        _check_speakers(args)
        scores = evaluate_diarization(_diarizer(args), audio, args.reference, args.uem,
                                      args.metric, args.exclusive, progress=progress,
                                      **_speakers(args))
        tasks = ["diarization"]
    else:
        scores = evaluate(_segmenter(args), audio, args.reference, args.uem, tuple(args.task),
                          _binarize(args), args.metric, progress=progress)
        tasks = args.task
    progress.close()
    sys.stdout.write(table(scores))
    if args.output:
        totals = [overall(scores, task).as_dict() for task in tasks]
        write_text(args.output, dumps_json({"metric": args.metric, "files": [
            s.as_dict() for s in scores], "overall": totals}))
    return 0


def _speakers(args: argparse.Namespace) -> dict:
    return dict(num_speakers=args.num_speakers, min_speakers=args.min_speakers,
                max_speakers=args.max_speakers)


def _check_speakers(args: argparse.Namespace) -> None:
    """The speaker bounds, refused in the options' own names before any work."""
    from powerseg.runtime.diarization.diarizer import speaker_bounds

    speaker_bounds(**_speakers(args))


def _stream(args: argparse.Namespace) -> int:
    """Print ``speech START END`` / ``overlap START END`` lines as regions become final
    (speaker turns with ``--diarization``); on Ctrl-C or SIGTERM, end the stream where the
    audio stopped and print the rest."""
    if args.diarization:
        return _live_diarization(args)
    options = _binarize(args)
    segmenter = _segmenter(args)
    stream = segmenter.stream(vad=options if args.events != "overlap" else None,
                              osd=options if args.events != "speech" else None)

    def show(part) -> None:
        for region in part.events:
            print(f"{region.label.lower()} {region.start:.3f} {region.end:.3f}", flush=True)

    rate = segmenter.spec.sample_rate
    _feed(args, rate, lambda samples: show(stream.push(samples)))
    if stream.samples_pushed:
        show(stream.flush())
    _stop_if_signalled(stream.samples_pushed / rate, "region")
    return 0


def _feed(args: argparse.Namespace, rate: int, push: Callable) -> None:
    """``push`` each block of the stream's audio until it ends or a signal asks to stop (a
    push itself is never cut short)."""
    try:
        for samples in _live_blocks(args, rate):
            push(samples)
            if _SIGNALS.number is not None:
                break
    except KeyboardInterrupt:  # raised only while waiting for audio
        pass


def _stop_if_signalled(seconds: float, what: str) -> None:
    if _SIGNALS.number is not None:
        raise _Stopped(f"powerseg: interrupted: stream ended at {seconds:.3f} s; every {what} "
                       "up to there is printed")


def _live_blocks(args: argparse.Namespace, rate: int):
    """Blocks of ``--block`` seconds of mono samples at ``rate``: raw s16le PCM from stdin
    ('-') or a .raw/.pcm file as it comes, or any audio file (at real-time pace with
    ``--realtime``)."""
    import time

    import numpy as np

    from powerseg.runtime.audio import blocks

    block = max(1, round(args.block * rate))  # samples per push
    raw = args.audio == "-" or Path(args.audio).suffix.lower() in (".raw", ".pcm")
    if raw:
        from contextlib import nullcontext

        size = 2 * block  # bytes of s16le
        left = b""
        with nullcontext(sys.stdin.buffer) if args.audio == "-" else open(args.audio, "rb") as f:
            read = getattr(f, "read1", f.read)  # returns what a pipe has, without waiting
            while data := _SIGNALS.waiting(read, size):
                data = left + data
                cut = len(data) - len(data) % 2
                left = data[cut:]
                yield np.frombuffer(data[:cut], dtype="<i2")
        return
    begun, sent = time.monotonic(), 0
    for samples in blocks(Path(args.audio), rate):
        for begin in range(0, len(samples), block):
            if args.realtime:  # the next block once the audio before it would have been heard
                time.sleep(max(0.0, begun + sent / rate - time.monotonic()))
            yield samples[begin:begin + block]
            sent += len(samples[begin:begin + block])


def _live_diarization(args: argparse.Namespace) -> int:
    """Speaker turns as RTTM (or JSON) lines as they become final; the offline result at the
    end with ``--final-output`` (of the audio heard, when a signal ends the stream)."""
    import json

    from powerseg.batch import diarization_records
    from powerseg.runtime.diarization.live import check_latency
    from powerseg.runtime.writers import dumps_json, rttm_lines, uri_of

    if args.final_output is not None and args.final_output.suffix.lower() not in (".rttm", ".json"):
        raise OptionError(f"--final-output {args.final_output}: give a .rttm or .json path")
    from powerseg.runtime import Diarizer

    diarizer = Diarizer(options=_diarizer_options(args), **_voices(args))
    framing = diarizer.segmenter.framing
    check_latency(args.latency, framing.step, framing.spec.window, "--latency")
    stream = diarizer.stream(latency=args.latency, **_speakers(args))
    uri = "stdin" if args.audio == "-" else uri_of(args.audio)

    def show(turns) -> None:
        for turn in turns:
            if args.format == "jsonl":
                line = json.dumps({"uri": uri, "start": round(turn.start, 6),
                                   "end": round(turn.end, 6), "speaker": turn.speaker}) + "\n"
            else:
                line = rttm_lines(uri, [turn])[0]
            sys.stdout.write(line)
            sys.stdout.flush()

    rate = diarizer.segmenter.spec.sample_rate
    _feed(args, rate, lambda samples: show(stream.push(samples)))
    seconds = stream.samples_pushed / rate
    if seconds or _SIGNALS.number is None:
        end = stream.flush()
        show(end.turns)
        if args.final_output is not None:
            lines, document = diarization_records(uri, end.diarization, exclusive=False)
            _emit(args.final_output, "".join(lines) if args.final_output.suffix.lower() ==
                  ".rttm" else dumps_json(document))
        mapping = ", ".join(f"{live} -> {final or 'none'}" for live, final in end.labels.items())
        print(f"powerseg: final speakers: {mapping or 'none'}", file=sys.stderr)
    _stop_if_signalled(seconds, "turn")
    return 0


def _emit(output: Path | None, text: str) -> None:
    from powerseg.runtime.writers import write_text

    if output is None:
        sys.stdout.write(text)
    else:
        write_text(output, text)


def _scores(args: argparse.Namespace) -> int:
    from powerseg.runtime.writers import scores_npz, segment_npz, write_npz

    _npz_output(args)
    if args.command == "scores":
        if args.output_dir:
            return _batch(args, _task(args))
        from powerseg import batch

        files = batch.expand(args.audio)
        if len(files) != 1:
            raise OptionError(f"{len(files)} inputs and one --output: give --output-dir for "
                              "one npz per input")
        args.audio = files[0]
    segmenter = _segmenter(args)
    done, failed = _each(args, [args.audio], lambda path, hook: segmenter(
        path, activations=args.command == "segment", hook=hook))
    if failed:
        return EXIT_INPUT
    result = done[0][1]
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
    """One whole-file embedding per input: all in one npz (``--output``), or one npz per
    input (``--output-dir``, here or on Ray, resumable); bad inputs reported and skipped."""
    from powerseg import batch
    from powerseg.runtime.writers import embeddings_npz, uri_of, write_npz

    _npz_output(args)
    task = _task(args)
    if args.output_dir:
        return _batch(args, task)
    embedder = task.producer().model
    done, failed = _each(args, batch.expand(args.audio),
                         lambda path, hook: embedder.embed(path, hook=hook))
    if done:
        write_npz(args.output, embeddings_npz([(uri_of(path), e) for path, e in done]))
    return EXIT_INPUT if failed else 0


def _info(args: argparse.Namespace) -> int:
    import numpy
    import onnxruntime

    from powerseg.models import shared_tail_path
    from powerseg.runtime.segmentation.auto_model import AUTO, choose_variant
    from powerseg.runtime.cpu import cpu_info
    from powerseg.runtime.embedding.embedder import EmbeddingModel
    from powerseg.runtime.segmentation.model import SegmentationModel

    variant = args.model
    print(f"powerseg {__version__}, numpy {numpy.__version__}, onnxruntime {onnxruntime.__version__}")
    print(f"cpu: {cpu_info().describe()}")
    print(f"available providers: {', '.join(onnxruntime.get_available_providers())}")
    if variant == AUTO:
        choice = choose_variant("auto")
        print(f"model auto runs: {choice.describe()}")
        variant = choice.variant
    model = SegmentationModel(variant, providers="auto")
    print(f"model: {model.path}")
    print(f"provider used: {model.provider}")
    tail = shared_tail_path(variant) if isinstance(variant, str) else None
    if tail is not None:
        print(f"runs as: on CPU, by default, the shared front/tail pair ({tail.name} and its "
              f"front) for steps of whole conv strides up to {_pair_max_step(model):g} s; this "
              "full model on GPUs, for other steps and with --no-shared-front (the same scores)")
    _print_metadata(model.spec.metadata)
    embedder = EmbeddingModel(args.embedding_model, providers="auto")
    print(f"embedding model: {embedder.path}")
    _print_metadata(embedder.spec.metadata)
    return 0


def _print_metadata(metadata: dict[str, str]) -> None:
    """The ONNX file's own metadata (the path it was loaded from is printed above it)."""
    for key, value in sorted(metadata.items()):
        if key != "file":
            print(f"  {key}: {value}")


def _pair_max_step(model) -> float:
    from powerseg.runtime.segmentation.front import PAIR_MAX_STEP

    return PAIR_MAX_STEP * model.spec.window


def _sample(args: argparse.Namespace) -> int:
    from powerseg.samples import sample_path

    print(sample_path())
    return 0


# ---- named speakers and transcripts (runtime/diarization/voices.py, powerseg/transcript.py) ----------------

def _similarity(text: str) -> float:
    value = float(text)
    if not -1 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be a cosine similarity in [-1, 1], got {text}")
    return value


def _voice_options(p: argparse.ArgumentParser, embeddings: bool = False) -> None:
    group = p.add_argument_group("named speakers")
    group.add_argument("--voices", type=Path, default=None, metavar="VOICES",
                       help="a voice bank (powerseg enroll): each speaker matching an enrolled "
                       "voice takes its name, one speaker per name")
    group.add_argument("--voice-threshold", type=_similarity, default=None, metavar="X",
                       help="cosine similarity a speaker needs to take a voice's name (default "
                       f"{DEFAULT_VOICE_THRESHOLD}, measured on CAM++: README)")
    if embeddings:
        group.add_argument("--embeddings", type=Path, default=None, metavar="OUT.npz",
                           help="also write each speaker's centroid, speech and name to this "
                           "npz (one audio file), for powerseg enroll --from-diarization")


def _voices(args: argparse.Namespace) -> dict:
    return dict(voices=None if args.voices is None else str(args.voices),
                voice_threshold=args.voice_threshold)


def _diarize_embeddings(args: argparse.Namespace) -> int:
    """One file's diarization, and its speakers' centroids into ``--embeddings``."""
    from powerseg import batch
    from powerseg.runtime.diarization.voices import speaker_arrays
    from powerseg.runtime.writers import dumps_json, uri_of, write_npz

    if args.output_dir or args.ray:
        raise OptionError("--embeddings writes one recording's speakers: give one audio file "
                          "and --output (or stdout), not --output-dir/--ray")
    files = batch.expand(args.audio)
    if len(files) != 1:
        raise OptionError(f"--embeddings writes one recording's speakers; {len(files)} inputs "
                          "given")
    task = _task(args)
    producer = task.producer()
    uri = uri_of(files[0])
    result = producer.model(files[0], **task.speakers)
    lines, document = batch.diarization_records(uri, result, task.exclusive)
    write_npz(args.embeddings, speaker_arrays(result, producer.model.embedder, uri))
    _emit(args.output, "".join(lines) if task.format == "rttm" else dumps_json(document))
    return 0


def _enroll_parser(sub) -> None:
    p = sub.add_parser("enroll", help="add a named voice to a voice bank, from audio clips (each "
                       "clip's main speaker) or a diarized speaker; --list shows a bank")
    p.add_argument("audio", nargs="*", type=Path,
                   help="clips of the voice: audio files, folders or .txt/.lst lists")
    p.add_argument("--name", help="the voice's name (no spaces: Ada_Lovelace)")
    p.add_argument("--output", "-o", type=Path, metavar="VOICES",
                   help="the voice bank file, at exactly this path: created if missing, "
                   "rewritten whole")
    p.add_argument("--replace", action="store_true",
                   help="replace the voice when --name is enrolled already")
    p.add_argument("--list", type=Path, metavar="VOICES",
                   help="print a bank's voices: name, clips, seconds of speech used")
    p.add_argument("--from-diarization", type=Path, metavar="OUT.npz",
                   help="enroll a speaker of `powerseg diarize --embeddings OUT.npz` (no audio)")
    p.add_argument("--speaker", help="with --from-diarization: the speaker's label "
                   "(SPEAKER_01) or the name it took")
    group = p.add_argument_group("models (enrolling from audio)")
    group.add_argument("--model", default="fp32", help="segmentation: fp32 (default), int8, "
                       "fp16 or an .onnx path")
    group.add_argument("--embedding", default="campplus",
                       help="speaker-embedding model: campplus (default) or an .onnx path")
    group.add_argument("--threads", type=_positive_int, default=None,
                       help="onnxruntime threads (default: one per core)")
    group.add_argument("--provider", default="auto", help="auto (default), cpu, cuda, or an "
                       "onnxruntime provider name")


def _enroll(args: argparse.Namespace) -> int:
    """Add (or replace) one voice in a bank, or list a bank."""
    from powerseg.runtime.diarization.voices import VoiceBank, check_name

    if args.list is not None:  # its options are checked with the others' (powerseg.modes)
        if args.audio:
            raise OptionError("audio clips do not apply with --list (it only prints a bank)")
        return _list_voices(args.list)
    missing = [flag for flag, value in (("--name", args.name), ("--output", args.output))
               if value is None]
    if missing:
        raise OptionError(f"enroll needs {' and '.join(missing)} (or --list VOICES)")
    if bool(args.audio) == bool(args.from_diarization):
        raise OptionError("enroll takes audio clips or --from-diarization OUT.npz: one of them")
    if args.from_diarization and not args.speaker:
        raise OptionError("--from-diarization needs --speaker (the label or name to enroll)")
    check_name(args.name, "--name")
    bank = VoiceBank.load(args.output) if args.output.exists() else None
    if bank is not None:
        bank.check_new(args.name, args.replace, replacing="--replace")
    bank = _enroll_speaker(args, bank) if args.from_diarization else _enroll_audio(args, bank)
    bank.save(args.output)
    voice = next(v for v in bank.voices() if v.name == args.name)
    print(f"{args.output}: {voice.name} enrolled from {voice.clips} clip(s), {voice.seconds:.1f} s "
          f"of speech; {len(bank.names)} voice(s) in the bank")
    return 0


def _enroll_audio(args: argparse.Namespace, bank):
    from powerseg import batch
    from powerseg.runtime import Diarizer
    from powerseg.runtime.diarization.voices import enroll

    files = batch.expand(args.audio)
    diarizer = Diarizer(segmentation=args.model, embedding=args.embedding, threads=args.threads,
                        providers=args.provider)
    return enroll(diarizer, args.name, files, bank, args.replace)


def _enroll_speaker(args: argparse.Namespace, bank):
    from powerseg.errors import VoiceBankError
    from powerseg.runtime.diarization.voices import VoiceBank, clip_from_speakers

    clip, model, digest = clip_from_speakers(args.from_diarization, args.speaker, args.name)
    bank = bank or VoiceBank(model, digest, len(clip.vector))
    if digest != bank.model_sha256:
        raise VoiceBankError(f"{args.from_diarization}: its speakers were embedded with {model!r} "
                             f"(sha256 {digest[:16]}...), the voices of {args.output} with "
                             f"{bank.model!r} (sha256 {bank.model_sha256[:16]}...); they cannot "
                             "be compared")
    return bank.add(args.name, [clip], args.replace)


def _list_voices(path: Path) -> int:
    from powerseg.runtime.diarization.voices import VoiceBank

    bank = VoiceBank.load(path)
    voices = bank.voices()
    width = max(len("name"), *(len(v.name) for v in voices))
    print(f"# {path}: {len(voices)} voice(s), speaker-embedding model {bank.model} "
          f"(sha256 {bank.model_sha256[:16]}...)")
    print(f"{'name':<{width}}  clips  speech")
    for v in voices:
        print(f"{v.name:<{width}}  {v.clips:>5}  {v.seconds:.1f} s")
    return 0


def _transcript_parser(sub) -> None:
    p = sub.add_parser("transcript", help="speaker-attributed transcript: an ASR's word timings, "
                       "each word given its speaker, as JSON, SubRip, WebVTT or text")
    p.add_argument("audio", type=Path)
    p.add_argument("--words", type=Path, required=True,
                   help="word timings: a JSON list of {start, end, word}, openai-whisper / "
                   "faster-whisper JSON (word_timestamps=True) or whisperX JSON")
    p.add_argument("--output", "-o", type=Path, required=True,
                   help="OUT.json, OUT.srt, OUT.vtt or OUT.txt (the format from the suffix)")
    p.add_argument("--rttm", type=Path, default=None,
                   help="use this diarization instead of running one (its recording named "
                   "like AUDIO, or its only one)")
    p.add_argument("--exclusive", action="store_true",
                   help="attribute words with the exclusive diarization (one speaker at a time)")
    p.add_argument("--max-gap", type=_non_negative_float, default=MAX_GAP,
                   help="a word overlapping no turn takes the nearest speaker within this many "
                   f"seconds (default {MAX_GAP})")
    _diarization_options(p)
    p.add_argument("--min-duration-off", type=_non_negative_float, default=0.0,
                   help="fill a speaker's gaps shorter than this (seconds)")
    _model_options(p, soft=False, step=None)
    _voice_options(p)


def _transcript(args: argparse.Namespace) -> int:
    from powerseg.runtime.writers import diarization_json, uri_of, write_text
    from powerseg.transcript import assign_speakers, output_format, read_words, render

    fmt = output_format(args.output)
    words = read_words(args.words)  # a bad words file fails before any model runs
    uri = uri_of(args.audio)
    if args.rttm is not None:  # no model option applies (powerseg.modes)
        turns, envelope = _rttm_turns(args.rttm, args.audio, uri)
    else:
        from powerseg.runtime import Diarizer

        result = Diarizer(options=_diarizer_options(args), **_voices(args))(args.audio, **_speakers(args))
        turns = result.exclusive() if args.exclusive else result.turns()
        envelope = diarization_json(uri, turns, result, args.exclusive)
    transcript = assign_speakers(words, turns, args.max_gap)
    write_text(args.output, render(transcript, fmt, envelope))
    unknown = sum(w.speaker is None for w in transcript.words)
    print(f"{args.output}: {len(transcript.words)} words, {len(transcript.speakers)} speakers, "
          f"{len(transcript.paragraphs)} paragraphs" +
          (f", {unknown} words with no speaker near (UNKNOWN)" if unknown else ""))
    return 0


def _rttm_turns(rttm: Path, audio: Path, uri: str) -> tuple[list, dict]:
    """The turns of ``uri`` (or of the only recording) in an RTTM file, and a JSON envelope."""
    from powerseg.errors import TranscriptError
    from powerseg.runtime.audio import duration
    from powerseg.runtime.diarization.diarizer import Turn
    from powerseg.runtime.metrics import read_rttm
    from powerseg.runtime.writers import envelope

    if not rttm.is_file():
        raise TranscriptError(f"{rttm}: no such RTTM file")
    recordings = read_rttm(rttm)
    if uri in recordings or len(recordings) == 1:
        regions = recordings.get(uri) or next(iter(recordings.values()))
    elif not recordings:
        regions = []  # no speech in it
    else:
        raise TranscriptError(f"{rttm}: no recording {uri!r} among its "
                              f"{', '.join(sorted(recordings))}")
    turns = sorted(Turn(r.start, r.end, r.label) for r in regions)
    return turns, {**envelope(), "uri": uri, "duration": duration(audio),  # no model ran
                   "speakers": list(dict.fromkeys(t.speaker for t in turns)),
                   "turns": [{"start": round(t.start, 6), "end": round(t.end, 6),
                              "speaker": t.speaker} for t in turns],
                   "rttm": str(rttm)}


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "vad": _regions, "osd": _regions, "diarize": _diarize, "stream": _stream, "scores": _scores,
    "segment": _scores, "plot": _plot, "eval": _eval, "export": _export, "embed": _embed,
    "info": _info, "sample": _sample,
}

COMMANDS.update(enroll=_enroll, transcript=_transcript)


# ---- the terminal: progress, messages, warnings, signals -------------------------------------

_STATUS: list = []  # the progress line shown now, if any (messages go above it)


def _progress(total: int):
    from powerseg.batch import Progress

    progress = Progress(total)
    _STATUS[:] = [progress]
    return progress


def _say(text: str) -> None:
    """One line on stderr, on a line of its own even while a progress line is shown."""
    if _STATUS:
        _STATUS[0].message(text)
    else:
        print(text, file=sys.stderr, flush=True)


def _report(error: BaseException, args: argparse.Namespace) -> None:
    if getattr(args, "debug", False):
        _say("".join(traceback.format_exception(error)).rstrip("\n"))
    text = str(error)
    _say(f"powerseg: error: {_in_cli_words(text, args) if isinstance(error, OptionError) else text}")


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """``powerseg: warning: FILE: ...``: the library's warnings name the file they concern;
    where in powerseg's code they were raised is of no use at the command line."""
    _say(f"powerseg: warning: {message}")


class _Stopped(Exception):
    """A command that stopped on a signal and says so in its own words."""


class _Signals:
    """SIGINT and SIGTERM stop a command as Ctrl-C does: a KeyboardInterrupt in the main thread,
    raised once (a second signal while the work winds down is ignored, so the clean-up that
    leaves nothing half-written is never itself cut short). ``waiting`` marks the stretches
    where a signal is raised at once (a blocking read); elsewhere, with ``deferred``, a
    signal only sets ``number`` for the command to check."""

    def __init__(self):
        self.number: int | None = None
        self.deferred = False
        self.blocked = False

    def __enter__(self):
        self.number, self.saved = None, {}
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                self.saved[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for number, handler in self.saved.items():
            signal.signal(number, handler)

    def _handle(self, number, frame) -> None:
        if self.number is not None:
            return
        self.number = number
        if not self.deferred or self.blocked:
            raise KeyboardInterrupt

    def waiting(self, function, *args):
        """``function(*args)`` where a signal interrupts it at once."""
        if self.number is not None:
            return None
        self.blocked = True
        try:
            return function(*args)
        finally:
            self.blocked = False

    @property
    def exit_code(self) -> int:
        return 128 + (self.number or signal.SIGINT)


_SIGNALS = _Signals()


def _in_cli_words(message: str, args: argparse.Namespace) -> str:
    """An option's Python name (``min_speakers``) as the user typed it (``--min-speakers``):
    a name with an underscore wherever it stands, a plain word (``step``) only where a
    message names an option, before "must" or a number in parentheses."""
    flags = getattr(args, "_flags", {})
    for name in sorted(flags, key=len, reverse=True):
        where = "" if "_" in name else r"(?= must| \(-?\d)"
        message = re.sub(rf"(?<![\w./-]){re.escape(name)}(?![\w./-]){where}",
                         flags[name], message)
    return message


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    actions = long_options(parser, args.command)
    args._flags = {action.dest: flag for flag, action in actions.items()}  # dest -> as typed
    _STATUS.clear()
    _SIGNALS.deferred = args.command == "stream"
    with warnings.catch_warnings(), _SIGNALS:
        warnings.showwarning = _show_warning
        try:
            check_modes(actions, args)
            return COMMANDS[args.command](args)
        except (OptionError, ProviderError) as error:
            _report(error, args)
            return EXIT_USAGE
        except PowersegError as error:
            _report(error, args)
            return EXIT_INPUT
        except BrokenPipeError:  # stdout's reader left (| head): nothing more to say
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_INPUT
        except OSError as error:  # writing the output: no space, permission, a directory
            _report(error, args)
            return EXIT_INPUT
        except (KeyboardInterrupt, _Stopped) as stop:
            if _STATUS:
                _STATUS[0].close()
            _STATUS.clear()
            if sys.stderr.isatty() and not isinstance(stop, _Stopped):
                sys.stderr.write("\r\x1b[K")  # past the terminal's ^C echo
            print(stop.line() if isinstance(stop, Interrupted) else str(stop)
                  if isinstance(stop, _Stopped) else "powerseg: interrupted",
                  file=sys.stderr, flush=True)
            return _SIGNALS.exit_code
        except Exception as error:  # a bug: still one line unless --debug
            if args.debug:
                _say("".join(traceback.format_exception(error)).rstrip("\n"))
            _say(f"powerseg: internal error: {type(error).__name__}: {error} "
                 "(rerun with --debug for the traceback)")
            return EXIT_INPUT
        finally:
            if _STATUS:
                _STATUS[0].close()
            _STATUS.clear()


if __name__ == "__main__":
    sys.exit(main())
