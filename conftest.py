"""Loads the parity suite's pytest plugin (options, fixtures, reports) for every test under this root."""

pytest_plugins = ["parity_lib.plugin"]
