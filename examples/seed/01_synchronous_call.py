"""Seed docs, "Synchronous calls": call an endpoint and read `.value`."""

from daisi_async import Daisi

# Instantiate a Daisi object
classify = Daisi("Zero Shot Text Classification")

# Synchronous call
result = classify.compute(text="Let's go the moon", candidate_labels="astronomy, travel").value
print(result)
assert result["labels"][0] == "astronomy"
