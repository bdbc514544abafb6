"""Data sharing agreements as data: the model, special-category rules, compilation into
filters, lifecycle, whose data is in scope, delivery windows and version diffs.

An agreement arrives as YAML (or through the admin API), is stored as numbered versions,
and is compiled into the filters `hub.core.policy.decide` applies. Pure: no I/O.
"""
