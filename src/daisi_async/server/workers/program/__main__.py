"""``python -m daisi_async.server.workers.program``: run a worker (see :mod:`.main`).

The program's names live in :mod:`daisi_async.server.workers.program.main`, not in
``__main__``: that name becomes the Daisi's module.
"""

import sys

from daisi_async.server.workers.program.main import main

if __name__ == "__main__":
    sys.exit(main())
