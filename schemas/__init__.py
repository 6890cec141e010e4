"""JSON Schemas shipped as package data (installed as `convert.schemas`)."""
