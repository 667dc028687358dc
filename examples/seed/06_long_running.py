"""Seed docs, "Asynchronous calls and long running executions": `.start()` now, `.value` later."""

from daisi_async import Daisi

greeting = Daisi("Print Hello")
async_exec = greeting.hello(name="World")
async_exec.start()
print(async_exec.status)

# Then fetch the `DaisiExecution` result with the `.value` attribute when ready
print(async_exec.value)
assert async_exec.value == "Hello World!"
