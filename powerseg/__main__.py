"""``python -m powerseg`` and the ``powerseg`` command."""

import sys


def run() -> int:
    """The CLI; Ctrl-C while it starts (its imports take a moment) ends it as Ctrl-C later
    does, in one line with exit code 130, not with a traceback from inside an import."""
    try:
        from powerseg.cli import main

        return main()
    except KeyboardInterrupt:
        print("powerseg: interrupted", file=sys.stderr, flush=True)
        return 130


if __name__ == "__main__":
    sys.exit(run())
