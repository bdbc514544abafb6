"""Stages a message passes through: ingest (agent -> store), dispatch (store -> queues), pull.

Each stage is async functions over the small interfaces in `ports`; the composition root
hands them concrete store and broker objects.
"""
