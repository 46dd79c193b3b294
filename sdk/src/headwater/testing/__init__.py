"""Helpers for testing flows: ``from headwater.testing.utilities import headwater_test_harness``."""
