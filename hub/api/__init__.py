"""HTTP entrypoints (FastAPI): the SIF agent endpoint, admin and health endpoints."""
