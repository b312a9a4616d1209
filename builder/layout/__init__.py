"""Variant folders: metadata.json and digest, assembly of Python-only variants, atomic install."""
