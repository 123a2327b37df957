"""``python -m powerseg`` and the ``powerseg`` command."""

import signal
import sys

_received = [signal.SIGINT]  # the signal that stopped the start-up


def _stop(number, frame) -> None:
    _received[0] = number
    raise KeyboardInterrupt


def run() -> int:
    """The CLI; Ctrl-C or SIGTERM while it starts (its imports take a moment) ends it as they
    do later, in one line with exit code 130 (143), once the imports are done."""
    signal.signal(signal.SIGTERM, _stop)  # until the command puts its own in place
    try:
        from powerseg.signals import held

        with held():  # a KeyboardInterrupt inside an import can leave it half done
            from powerseg.cli import main
        return main()
    except KeyboardInterrupt:
        print("powerseg: interrupted", file=sys.stderr, flush=True)
        return 128 + _received[0]


if __name__ == "__main__":
    sys.exit(run())
