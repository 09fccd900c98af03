"""``python -m unroot``."""

import sys

from unroot.cli import main

sys.exit(main())
