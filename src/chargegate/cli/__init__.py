"""The `chargegate` command line."""
