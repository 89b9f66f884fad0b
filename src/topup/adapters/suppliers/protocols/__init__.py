"""One module per supplier protocol. Each defines `NAME` and `create(client, now) -> SupplierProtocol`;
`registry.discover` finds them, so adding a protocol is adding a module here (and its simulator mode)."""
