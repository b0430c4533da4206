"""The payments domain's refusals, each with one code and one status."""

from __future__ import annotations

from library_service.core.errors import (
    AppError,
    ConflictError,
    NotFoundError,
    ServiceUnavailableError,
)


class PaymentProviderUnavailableError(ServiceUnavailableError):
    """Stripe could not be reached, timed out, or answered with an error.

    Raised by the Stripe client itself: a request answers 503 with nothing changed, a job
    catches it and tries again later.
    """

    code = "payment_provider_unavailable"
    message = "The payment provider is unavailable right now; nothing was changed, please retry."


class PaymentNotFoundError(NotFoundError):
    code = "payment_not_found"
    message = "Payment not found."


class UnknownSessionError(NotFoundError):
    code = "unknown_session"
    message = "No payment has this checkout session."


class PaymentNotCompletedError(AppError):
    code = "payment_not_completed"
    message = "This checkout session is not paid yet."


class PaymentAlreadyPaidError(AppError):
    code = "payment_already_paid"
    message = "This payment is already paid."


class PaymentWaivedError(AppError):
    code = "payment_waived"
    message = "This payment was waived: nothing is owed on it."


class InvalidWaiverReasonError(AppError):
    code = "waiver_reason_required"
    message = "A waiver needs a reason of 1 to 500 characters."


class PaymentNotExpiredError(AppError):
    code = "payment_not_expired"
    message = "This payment's checkout session is still open; pay it at its session_url."


class PaymentChangedError(ConflictError):
    code = "payment_changed"
    message = "This payment changed meanwhile; reload it and try again."


class WebhookNotConfiguredError(AppError):
    code = "webhook_not_configured"
    message = "Webhooks are not configured."


class InvalidEventError(AppError):
    code = "invalid_event"
    message = "The event is not a Stripe event this service can read."


class InvalidSignatureError(AppError):
    code = "invalid_signature"
    message = "The Stripe-Signature header does not match the payload."
