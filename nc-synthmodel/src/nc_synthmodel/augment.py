"""Moved to :mod:`nc_synthmodel.features.augment`; names stay importable."""

from .features.augment import *  # noqa: F403
from .features.augment import __all__  # noqa: F401
