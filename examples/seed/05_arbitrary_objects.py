"""Seed docs, "Passing and receiving arbitrary objects": a class from __main__ travels."""

import numpy as np

from daisi_async import Daisi

# Connect to the "Daisi Serialize" Daisi
daisi_serialize = Daisi("exampledaisies/Daisi Serialize")


# Class definition
class MapStack:
    def __init__(self, nx, ny):
        self.nx = nx
        self.ny = ny
        self.nb_layers = None
        self.maps = []

    def add_layer(self, map):
        if len(map.shape) == 2 and map.shape[0] == self.ny and map.shape[1] == self.nx:
            self.maps.append(map)
            self.nb_layers = len(self.maps)
            return "Map successfully added."
        else:
            return "Could not add map. Incompatible dimensions."


# Initialize a new MapStack object with 10 layers
nx = 200
ny = 200
ms = MapStack(nx, ny)
for _ in range(10):
    ms.add_layer(np.random.rand(nx, ny))

# Invoke the "compute()" endpoint, add a new layer to the stack
# and receive back the updated Stack object
result = daisi_serialize.compute(map_stack=ms, map=np.random.rand(ny, nx)).value
print(type(result).__name__, result.nb_layers)
assert result.nb_layers == 11
