"""Seed docs, "Tracebacks": a failure is reported by `.value`."""

from daisi_async import Daisi, DaisiExecutionError

with Daisi("Always Fails") as d:
    try:
        d.divide(numerator=1, denominator=0).value
    except ZeroDivisionError as exc:  # also a DaisiExecutionError
        assert isinstance(exc, DaisiExecutionError)
        print(exc.traceback)
