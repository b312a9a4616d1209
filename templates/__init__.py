"""Jinja templates rendered into a kernel's generated build tree (package data)."""
