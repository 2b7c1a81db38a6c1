"""``python -m mojo_pool serve``: the same as the ``mojo-pool`` console script."""
import sys

from .cli import main

sys.exit(main())
