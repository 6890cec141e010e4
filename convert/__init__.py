"""acioci: convert container images between appc ACI and OCI, and validate them.

The public API lives in `convert.api` (read, render, convert); the graph in `convert.graph`.
"""

__version__ = "0.1.0"
