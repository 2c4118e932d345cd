"""OCPI (2.1.1 and 2.2.1, CPO side)."""
