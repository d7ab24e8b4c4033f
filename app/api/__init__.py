"""The HTTP API (FastAPI): health, devices, readings, dead letters, metrics."""
