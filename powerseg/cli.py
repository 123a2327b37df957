"""Command line: ``powerseg vad|osd|scores|segment|export|info|sample``.

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

EXIT_INPUT, EXIT_USAGE = 1, 2


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


def _model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument("--model", default="fp32", help="fp32 (default), int8, or an .onnx path")
    group.add_argument("--step", type=_positive_float, default=1.0,
                       help="seconds between 10 s windows (default 1.0, as pyannote)")
    group.add_argument("--batch-size", type=_positive_int, default=32)
    group.add_argument("--threads", type=_positive_int, default=None,
                       help="onnxruntime threads (default: one per core)")
    group.add_argument("--provider", default="auto", help="auto (default), cpu, cuda, or an "
                       "onnxruntime provider name")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="powerseg", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"powerseg {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    for name, what in (("vad", "speech"), ("osd", "overlapped speech")):
        p = sub.add_parser(name, help=f"{what} regions as RTTM or JSON")
        p.add_argument("audio", nargs="+", type=Path)
        p.add_argument("--output", "-o", type=Path, help="output file (default: stdout)")
        p.add_argument("--format", choices=("rttm", "json"), default=None,
                       help="default: from the output suffix, else rttm")
        _model_options(p)
        _binarize_options(p)

    p = sub.add_parser("scores", help="aggregated speech/overlap scores per frame (npz)")
    p.add_argument("audio", type=Path)
    p.add_argument("--output", "-o", type=Path, required=True)
    _model_options(p)

    p = sub.add_parser("segment", help="per-chunk speaker activations (npz)")
    p.add_argument("audio", type=Path)
    p.add_argument("--output", "-o", type=Path, required=True)
    _model_options(p)

    p = sub.add_parser("export", help="checkpoint -> verified ONNX (needs powerseg[export])")
    p.add_argument("--checkpoint", required=True,
                   help="pytorch_model.bin, or pyannote/segmentation-3.0 (needs huggingface_hub)")
    p.add_argument("--output", "-o", type=Path, required=True)
    p.add_argument("--quantize", choices=("int8",), default=None)
    p.add_argument("--audio", type=Path, nargs="*", default=None,
                   help="audio to verify (and calibrate) on; default: the bundled recording")
    p.add_argument("--token", default=None, help="Hugging Face token for the hub id")

    p = sub.add_parser("info", help="model metadata, providers and versions")
    p.add_argument("--model", default="fp32")

    sub.add_parser("sample", help="print the path of the bundled recording")
    return parser


def _segmenter(args: argparse.Namespace):
    from powerseg.runtime import Segmenter

    return Segmenter(model=args.model, step=args.step, batch_size=args.batch_size,
                     threads=args.threads, providers=args.provider, soft=args.soft)


def _regions(args: argparse.Namespace) -> int:
    from powerseg.runtime import BinarizeOptions
    from powerseg.runtime.writers import dumps_json, regions_json, rttm_lines, uri_of

    options = BinarizeOptions(args.onset, args.offset, args.min_duration_on,
                              args.min_duration_off, args.pad_onset, args.pad_offset)
    fmt = args.format or ("json" if args.output and args.output.suffix == ".json" else "rttm")
    segmenter = _segmenter(args)
    rttm, documents, failed = [], [], 0
    for path in args.audio:
        try:
            result = segmenter(path)
        except PowersegError as error:
            _report(error, args)
            failed += 1
            continue
        regions = result.vad(options) if args.command == "vad" else result.osd(options)
        rttm += rttm_lines(uri_of(path), regions)
        documents.append(regions_json(uri_of(path), regions, result))
    text = "".join(rttm) if fmt == "rttm" else dumps_json(
        documents[0] if len(args.audio) == 1 and documents else documents)
    if documents:
        _emit(args.output, text)
    return EXIT_INPUT if failed else 0


def _emit(output: Path | None, text: str) -> None:
    from powerseg.runtime.writers import write_text

    if output is None:
        sys.stdout.write(text)
    else:
        write_text(output, text)


def _scores(args: argparse.Namespace) -> int:
    from powerseg.runtime.writers import scores_npz, segment_npz, write_npz

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
    manifest = build(args.checkpoint, args.output, args.quantize, args.audio, args.token, command)
    for name, entry in manifest["files"].items():
        parity = entry.get("parity_vs_torch") or entry.get("parity_vs_fp32")
        print(f"{args.output.parent / name}: {entry['variant']}, argmax agreement "
              f"{parity['argmax_agreement']:.4%}, worst probability difference {parity['worst']:.2e}")
    return 0


def _info(args: argparse.Namespace) -> int:
    import numpy
    import onnxruntime

    from powerseg.runtime.model import OnnxModel

    model = OnnxModel(args.model, providers="auto")
    print(f"powerseg {__version__}, numpy {numpy.__version__}, onnxruntime {onnxruntime.__version__}")
    print(f"available providers: {', '.join(onnxruntime.get_available_providers())}")
    print(f"model: {model.path}")
    print(f"provider used: {model.provider}")
    for key, value in sorted(model.spec.metadata.items()):
        print(f"  {key}: {value}")
    return 0


def _sample(args: argparse.Namespace) -> int:
    from powerseg.samples import sample_path

    print(sample_path())
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "vad": _regions, "osd": _regions, "scores": _scores, "segment": _scores,
    "export": _export, "info": _info, "sample": _sample,
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
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
