"""One base error with a code and an HTTP status; a subclass per business condition."""

from __future__ import annotations

from typing import Any


class TopupError(Exception):
    """Base of every error a caller can see."""

    code = "invalid_request"
    status = 400

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidRequest(TopupError):
    code, status = "invalid_request", 400


class Unauthorized(TopupError):
    code, status = "unauthorized", 401


class Forbidden(TopupError):
    code, status = "forbidden", 403


class NotFound(TopupError):
    code, status = "not_found", 404


class InsufficientBalance(TopupError):
    code, status = "insufficient_balance", 402


class IdempotencyConflict(TopupError):
    code, status = "idempotency_conflict", 409


class InvalidState(TopupError):
    code, status = "invalid_state", 409


class UnknownProduct(TopupError):
    code, status = "unknown_product", 400


class InvalidAccountError(TopupError):
    code, status = "invalid_account", 400


class NoRoute(TopupError):
    code, status = "no_route", 400


class BatchTooLarge(TopupError):
    code, status = "batch_too_large", 413


class PayloadTooLarge(TopupError):
    code, status = "invalid_request", 413


class SupplierError(TopupError):
    """A supplier did not give a usable answer (a failed balance check)."""

    code, status = "supplier_error", 502
