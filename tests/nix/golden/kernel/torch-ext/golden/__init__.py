"""Evaluation only."""
