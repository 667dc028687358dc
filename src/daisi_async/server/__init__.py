"""The local Daisi runtime: ``daisi serve DIR`` (needs the ``server`` extra)."""
