"""Defenses and baselines. One module per defense, one registry line each in :mod:`defenses.catalog`."""
