"""Print Hello: says hello."""

from __future__ import annotations


def hello(name: str = "World") -> str:
    """Print and return a greeting.

    Args:
        name: Who to greet.

    Returns:
        ``"Hello <name>!"``.
    """
    greeting = f"Hello {name}!"
    print(greeting)
    return greeting
