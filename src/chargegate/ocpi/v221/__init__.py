"""OCPI 2.2.1 wire objects."""
