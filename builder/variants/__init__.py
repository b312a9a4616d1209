"""The variant matrix and which variants a kernel gets."""

from .applicable import Variant, applicable_variants, exclusion_reason
from .matrix import BuildSet, load_matrix

__all__ = ["BuildSet", "Variant", "applicable_variants", "exclusion_reason", "load_matrix"]
