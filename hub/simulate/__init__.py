"""Simulated parties for the demo, the benchmarks and the tests: a school's MIS agent, the
SIF messages it sends, a fictional county's data, and an LA service's queue consumer.

Nothing in the running hub imports this package; it speaks to the hub only over its edges.
"""
