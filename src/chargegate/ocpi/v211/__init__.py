"""OCPI 2.1.1 wire objects."""
