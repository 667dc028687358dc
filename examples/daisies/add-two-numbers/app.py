"""Add Two Numbers: the smallest possible Daisi."""

from __future__ import annotations


def compute(firstNumber: float, secondNumber: float) -> float:
    """Return the sum of two numbers.

    Args:
        firstNumber: The first number.
        secondNumber: The second number.

    Returns:
        ``firstNumber + secondNumber`` (an int when both are ints).
    """
    return firstNumber + secondNumber
