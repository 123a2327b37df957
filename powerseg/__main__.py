import sys

from powerseg.cli import main

sys.exit(main())
