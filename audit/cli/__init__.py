"""The ``fedaudit`` command line: the click group and entry point in ``main``, one module per command."""
