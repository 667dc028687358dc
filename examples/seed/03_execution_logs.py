"""Seed docs, "Execution Logs": `.logs` while the run goes on."""

import time

from daisi_async import Daisi

with Daisi("Live Logging") as my_daisi:
    de = my_daisi.live_log_test(firstNumber=5, secondNumber=6, delay=3)
    de.start()
    time.sleep(2)
    print(de.logs)  # the lines printed so far
    assert de.logs and de.status == "RUNNING"
    print(de.value)  # 11
