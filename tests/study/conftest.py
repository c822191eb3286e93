"""The study's fixtures (`store`, `gate_open`, `cycle`) live in the plugin (`parity_lib.pytest_fixtures`):
they compute and record; the tests here only assert."""
