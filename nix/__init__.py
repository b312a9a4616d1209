"""Nix data and expressions; shipped so the CLI can read the matrix."""
