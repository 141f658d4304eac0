"""``python -m nc_synthmodel.cli``."""

import sys

from .main import main

sys.exit(main())
