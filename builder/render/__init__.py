"""Rendering the generated build tree from templates."""

from .project import render_legacy_init, render_noarch_ops, render_project
from .tree import clean_tree, write_tree

__all__ = ["clean_tree", "render_legacy_init", "render_noarch_ops", "render_project", "write_tree"]
