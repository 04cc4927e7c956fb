"""A minimal third exchange's simulator side, registered only by the tests that show every list
derived from the registry takes it up without any other edit."""

EXCHANGE = "fakex"
