#!/usr/bin/env python
"""Separate songs into stems: ``python separate.py song.mp3 [folder ...] [options]``.

A thin entry point; see ``wavesep.separate`` (installed as ``wavesep-separate``) and --help.
"""

import sys

from wavesep.separate import main

if __name__ == "__main__":
    sys.exit(main())
