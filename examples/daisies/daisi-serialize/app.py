"""Daisi Serialize: receives and returns custom Python objects."""

from __future__ import annotations

from typing import Any

import numpy as np


class MapStack:
    """A stack of 2-D maps of the same shape (``ny`` rows, ``nx`` columns)."""

    def __init__(self, nx: int, ny: int) -> None:
        self.nx = nx
        self.ny = ny
        self.nb_layers: int | None = None
        self.maps: list[Any] = []

    def add_layer(self, map: Any) -> str:
        """Append ``map`` if it is 2-D with ``ny`` rows and ``nx`` columns; return a status."""
        if len(map.shape) == 2 and map.shape[0] == self.ny and map.shape[1] == self.nx:
            self.maps.append(map)
            self.nb_layers = len(self.maps)
            return "Map sucessfully added."
        else:
            return "Could not add map. Incompatible dimensions."


class GridStack:
    """A stack of 2-D grids of the same shape (``ny`` rows, ``nx`` columns)."""

    def __init__(self, nx: int, ny: int) -> None:
        self.nx = nx
        self.ny = ny
        self.nb_layers: int | None = None
        self.grids: list[Any] = []

    def add_layer(self, grid: Any) -> str:
        """Append ``grid`` if its shape is ``(ny, nx)``; return a status message."""
        if grid.shape == (self.ny, self.nx):
            self.grids.append(grid)
            self.nb_layers = len(self.grids)
            return "Map sucessfully added."
        else:
            return "Could not add map. Incompatible dimensions."


def compute(
    map_stack: Any = None,
    map: Any = None,
    grid_stack: Any = None,
    grid: Any = None,
) -> Any:
    """Add a layer to a stack and return the stack.

    Call it as ``compute(map_stack=..., map=...)`` or ``compute(grid_stack=..., grid=...)``.
    Any object with an ``add_layer`` method works as the stack.

    Args:
        map_stack: A ``MapStack`` (or any object with ``add_layer``).
        map: The 2-D array to add to ``map_stack``.
        grid_stack: A ``GridStack`` (or any object with ``add_layer``).
        grid: The 2-D array to add to ``grid_stack``.

    Returns:
        The stack, with the new layer when its shape fits.

    Raises:
        ValueError: neither a ``map_stack``/``map`` nor a ``grid_stack``/``grid`` pair.
    """
    if map_stack is not None and map is not None:
        stack, layer = map_stack, map
    elif grid_stack is not None and grid is not None:
        stack, layer = grid_stack, grid
    else:
        raise ValueError("pass map_stack= and map=, or grid_stack= and grid=")
    status = stack.add_layer(layer)
    print(status)
    return stack


def make_stack(nx: int = 4, ny: int = 4, layers: int = 1) -> MapStack:
    """Build a ``MapStack`` of random layers here and return it.

    Args:
        nx: Columns of each map.
        ny: Rows of each map.
        layers: How many random maps to stack.
    """
    rng = np.random.default_rng()
    stack = MapStack(nx, ny)
    for _ in range(layers):
        stack.add_layer(rng.random((ny, nx)))
    print(f"built a {ny}x{nx} MapStack with {stack.nb_layers} layers")
    return stack
