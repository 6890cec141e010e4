"""appc image discovery and signature verification: the `appc:` source (issue 16)."""
