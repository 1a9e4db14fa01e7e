"""Allow ``python -m wlmd``."""

from wlmd.cli import main

raise SystemExit(main())
