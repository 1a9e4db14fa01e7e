"""``python -m wlmd.ctl``: the same as ``wlmctl``."""

import sys

from wlmd.ctl.main import main

sys.exit(main())
