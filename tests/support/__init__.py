"""Helpers the tests import (`from support.builders import ...`); no fixtures, no tests."""
