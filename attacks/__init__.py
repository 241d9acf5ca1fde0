"""Attacks. One module per attack, one registry line each in :mod:`attacks.catalog`."""
