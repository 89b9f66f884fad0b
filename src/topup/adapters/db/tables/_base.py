"""The metadata every table belongs to, and column types shared by several tables."""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, MetaData

metadata = MetaData()

# Autoincrement ids that also work on SQLite (INTEGER PRIMARY KEY there).
BigId = BigInteger().with_variant(Integer(), "sqlite")
