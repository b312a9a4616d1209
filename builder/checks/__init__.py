"""Checks on built variants: layout and metadata, Python code, binary portability, loading."""
