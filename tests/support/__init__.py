"""Test helpers that are not tests themselves (the fault-injecting proxy)."""
