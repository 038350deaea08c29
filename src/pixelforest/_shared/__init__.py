"""Helpers every subpackage shares: input checks, atomic outputs, the thread budget."""
