"""python -m reactorsvc: the same as the `reactorsvc` command."""

import sys

from .cli import main

sys.exit(main())
