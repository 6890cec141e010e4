"""What the specs say, as code: JSON schemas, media types, the appc <-> OCI vocabulary tables and
the ACI manifest and entry rules.

This layer sits below readers, writers and the validator, which all use it, and it imports
nothing above it (only errors, jsonio and the graph's value types): that is what keeps
`readers/` and `validation/` from importing each other. `tests/test_import_graph.py` checks it.
"""
