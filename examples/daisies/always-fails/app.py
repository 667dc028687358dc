"""Always Fails: endpoints that raise, to see how failures are reported."""

from __future__ import annotations


def divide(numerator: float = 1, denominator: float = 0) -> float:
    """Divide two numbers; with the defaults this raises ``ZeroDivisionError``.

    Args:
        numerator: The number to divide.
        denominator: The number to divide by.
    """
    print(f"dividing {numerator} by {denominator}")
    return numerator / denominator


def fail(message: str = "boom") -> None:
    """Always raise ``ValueError(message)``.

    Args:
        message: The error message.
    """
    print(f"about to fail with {message!r}")
    raise ValueError(message)
