"""The dialects a Daisi server may speak: ``base`` (the interface), ``legacy``, ``v1``,
and ``negotiate`` (which one a server speaks)."""
