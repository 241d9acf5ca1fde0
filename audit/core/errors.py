"""The one error type of fedaudit for bad input, worded like scikit-learn's.

Every check of a user-supplied value raises :class:`InvalidParameterError` with the
wording ``The 'x' parameter of F must be <constraint>. Got <value> instead.`` so the
CLI can turn it into a one-line message and exit code 2.
"""

from __future__ import annotations


class InvalidParameterError(ValueError, TypeError):
    """A parameter, name, path or file given by the user is not acceptable."""


def invalid(param: str, owner: str, constraint: str, value: object) -> InvalidParameterError:
    """Build the standard error for ``param`` of ``owner``."""
    return InvalidParameterError(
        f"The {param!r} parameter of {owner} must be {constraint}. Got {value!r} instead."
    )
