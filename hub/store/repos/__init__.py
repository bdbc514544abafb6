"""One repository per aggregate, each a small class over the transaction's connection
(hub.store.tx.SqlTx composes them). Every query the hub makes lives in these modules."""
