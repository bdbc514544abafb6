"""Edge adapters: one module per format or transport at the hub's edge. Each opens with a
docstring naming its features and its configuration or URL form. Adapters change format and
transport, never policy: what leaves is decided and filtered before an adapter sees it.

- webhook.py: push each released copy over HTTPS, signed the Standard Webhooks way.
- json_feed.py: the one SIF XML -> JSON mapping of the pull feed (GET /api/v1/feeds/{id}).
- file_export.py: released copies as CSV rows in files written atomically to a directory,
  each with a JSON manifest (scheduled file exports; docs/file-exports.md).

The simulated school agent, sample data and demo LA consumer live in hub/simulate/.
"""
