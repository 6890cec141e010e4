"""Readers: one per source format, each producing the neutral graph (`convert.graph`)."""
