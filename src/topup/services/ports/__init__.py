"""What use cases need from storage, as typed protocols (the adapters in `topup.adapters.db.repos`
implement them; in-memory fakes in `topup.adapters.db.memory` implement them for fast tests).

One module per area; `UnitOfWork` in `topup.services.uow` bundles them for one transaction.
"""
