"""Seed docs, "Execution Status": `.status` before and after the run."""

from daisi_async import Daisi

with Daisi("Add Two Numbers") as my_daisi:
    de = my_daisi.compute(firstNumber=5, secondNumber=6)
    print(de.status)  # NOT_STARTED
    print(de.value)  # 11
    print(de.status)  # FINISHED
    assert de.status == "FINISHED" and de.value == 11
