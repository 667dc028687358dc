"""What a Daisi is doing, as the API shows it (:class:`DaisiState`): one set of names.

Example:
    >>> DaisiState.READY.value
    'ready'
"""

from __future__ import annotations

import enum

__all__ = ["DaisiState"]


class DaisiState(str, enum.Enum):
    """The state of a Daisi (``state`` in the Daisi object of the API).

    * ``building``: the Daisi's own environment (its ``requirements.txt``) is being
      built; calls wait;
    * ``idle``: no worker runs (none started yet, or they stopped after the idle
      time); the next call starts one;
    * ``starting``: a worker is importing the Daisi's module and none is ready;
    * ``ready``: at least one worker has imported the module and takes calls;
    * ``broken``: the Daisi can't run (a load problem, or the last import failed);
      ``broken`` in the Daisi object says why. A failed import is tried again by the
      next call after a backoff (:mod:`daisi_async.server.workers.pool`).
    """

    BUILDING = "building"
    IDLE = "idle"
    STARTING = "starting"
    READY = "ready"
    BROKEN = "broken"
