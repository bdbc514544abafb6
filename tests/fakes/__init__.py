"""In-memory fakes of the pipeline's ports (hub.core.ports), one per aggregate, for fast
unit tests. tests/integration/test_store_contract.py runs the same assertions against
them and the SQL store, so they cannot drift."""

from tests.fakes.broker import FakePublisher, FakePullSource
from tests.fakes.store import FakeStore, FakeTx

__all__ = ["FakePublisher", "FakePullSource", "FakeStore", "FakeTx"]
