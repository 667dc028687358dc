"""Titanic Statistics: simple statistics on a sample of the Titanic passenger list."""

from __future__ import annotations

import csv
import math
import statistics
from pathlib import Path

DATA = Path(__file__).with_name("titanic.csv")


def _load() -> dict[str, list[str]]:
    with DATA.open(newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    columns: dict[str, list[str]] = {name: [] for name in (rows[0] if rows else {})}
    for row in rows:
        for name, value in row.items():
            columns[name].append(value)
    return columns


COLUMNS = _load()


def _values(column: str) -> list[float]:
    """The non-missing values of a numeric column."""
    if column not in COLUMNS:
        known = ", ".join(COLUMNS)
        raise ValueError(f"unknown column {column!r} (columns: {known})")
    values: list[float] = []
    for text in COLUMNS[column]:
        if not text.strip():
            continue
        try:
            values.append(float(text))
        except ValueError:
            raise ValueError(f"column {column!r} is not numeric") from None
    if not values:
        raise ValueError(f"column {column!r} has no values")
    return values


def _numeric_columns() -> list[str]:
    names = []
    for name in COLUMNS:
        try:
            _values(name)
        except ValueError:
            continue
        names.append(name)
    return names


def median(column: str = "Age") -> float:
    """The median of a numeric column, missing values skipped.

    Args:
        column: The column name, e.g. ``"Age"`` or ``"Fare"``.
    """
    return float(statistics.median(_values(column)))


def mean(column: str = "Age") -> float:
    """The mean of a numeric column, missing values skipped.

    Args:
        column: The column name, e.g. ``"Age"`` or ``"Fare"``.
    """
    return float(statistics.fmean(_values(column)))


def percentile(column: str = "Fare", q: float = 50) -> float:
    """The ``q``-th percentile of a numeric column (linear interpolation, like numpy).

    Args:
        column: The column name, e.g. ``"Age"`` or ``"Fare"``.
        q: The percentile, between 0 and 100.
    """
    if not 0 <= q <= 100:
        raise ValueError(f"q must be between 0 and 100, got {q}")
    values = sorted(_values(column))
    position = (len(values) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(values) - 1)
    return float(values[low] + (values[high] - values[low]) * (position - low))


def summary() -> dict[str, dict[str, float]]:
    """Mean, median and count of every numeric column.

    Returns:
        ``{column: {"mean": ..., "median": ..., "count": ...}}``.
    """
    return {
        name: {"mean": mean(name), "median": median(name), "count": len(_values(name))}
        for name in _numeric_columns()
    }
