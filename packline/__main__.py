"""``python -m packline``."""

import sys

from packline.cli import main

sys.exit(main())
