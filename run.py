#!/usr/bin/env python3
"""Start Maître (`python run.py`), or administer it: `python run.py --help`."""

import sys

from app.cli import main

if __name__ == "__main__":
    sys.exit(main())
