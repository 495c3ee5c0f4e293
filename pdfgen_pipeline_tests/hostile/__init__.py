"""Hostile and broken input corpus: every case, its expected outcome, and proof that nothing leaked."""
