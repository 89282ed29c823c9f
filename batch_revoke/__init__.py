"""Revoke Capillary loyalty badges in bulk from a CSV file."""
