"""Prometheus metrics: the hub.core.ports.Metrics the pipeline reports to, the levels read at
scrape time, and the text exposition served at /metrics."""
