"""Seed docs, "Remote Results": chain executions without fetching their data."""

import numpy as np

from daisi_async import Daisi

# Connect to the "Daisi Serialize" Daisi
d = Daisi("Daisi Serialize")


class GridStack:
    def __init__(self, nx, ny):
        self.nx = nx
        self.ny = ny
        self.nb_layers = None
        self.grids = []

    def add_layer(self, grid):
        if grid.shape == (self.ny, self.nx):
            self.grids.append(grid)
            self.nb_layers = len(self.grids)
            return "Map successfully added."
        else:
            return "Could not add map. Incompatible dimensions."


# Initialize a new GridStack object with 10 layers
nx = ny = 200
gs = GridStack(nx=nx, ny=ny)
for _ in range(10):
    gs.add_layer(np.random.rand(ny, nx))

# Invoke the daisi endpoint asynchronously, adding a new layer to the grid stack
d_execution = d.compute_(grid_stack=gs, grid=np.random.rand(ny, nx))

# Recompute the daisi, adding another new layer, and fetch the result
result = d.compute_(grid_stack=d_execution, grid=np.random.rand(ny, nx)).value
print(result.nb_layers)
assert result.nb_layers == 12
