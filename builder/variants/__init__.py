"""The variant matrix and which variants a kernel gets."""

from .applicable import Variant, applicable_variants, exclusion_reason
from .matrix import BuildSet, load_matrix
from .select import Selected, Selection, explain_unknown, select_variants

__all__ = ["BuildSet", "Selected", "Selection", "Variant", "applicable_variants", "exclusion_reason", "explain_unknown", "load_matrix", "select_variants"]
