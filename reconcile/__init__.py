"""Proof that the warehouse holds what the source holds."""
