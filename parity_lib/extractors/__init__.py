"""Deprecated import path, kept so that tool plugins written against it keep working: import from
`parity_lib.tools` (its `finish`, `unwrap`, `Activations`) instead."""
