"""chargegate: OCPI remote commands carried to OCPP charge points, results carried back."""

__version__ = "0.1.0"
