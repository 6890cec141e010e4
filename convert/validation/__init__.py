"""Validation of the JSON documents and archives acioci reads and writes."""
