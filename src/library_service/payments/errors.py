"""The payments domain's refusals, each with one code and one status."""

from __future__ import annotations

from library_service.core.errors import AppError, NotFoundError, ServiceUnavailableError


class PaymentProviderUnavailableError(ServiceUnavailableError):
    """Stripe could not be reached, timed out, or answered with an error.

    Raised by the Stripe client itself: a request answers 503 with nothing changed, a job
    catches it and tries again later.
    """

    code = "payment_provider_unavailable"

    def __init__(self) -> None:
        super().__init__(
            "The payment provider is unavailable right now; nothing was changed, please retry.",
            headers={"Retry-After": "10"},
        )


class PaymentNotFoundError(NotFoundError):
    code = "payment_not_found"

    def __init__(self) -> None:
        super().__init__("Payment not found.")


class UnknownSessionError(NotFoundError):
    code = "unknown_session"

    def __init__(self) -> None:
        super().__init__("No payment has this checkout session.")


class PaymentNotCompletedError(AppError):
    code = "payment_not_completed"

    def __init__(self) -> None:
        super().__init__("This checkout session is not paid yet.")


class PaymentAlreadyPaidError(AppError):
    code = "payment_already_paid"

    def __init__(self) -> None:
        super().__init__("This payment is already paid.")


class PaymentNotExpiredError(AppError):
    code = "payment_not_expired"

    def __init__(self) -> None:
        super().__init__(
            "This payment's checkout session is still open; pay it at its session_url."
        )


class PaymentChangedError(AppError):
    code = "payment_changed"

    def __init__(self) -> None:
        super().__init__("This payment changed meanwhile; reload it and try again.")


class WebhookNotConfiguredError(AppError):
    code = "webhook_not_configured"

    def __init__(self) -> None:
        super().__init__("Webhooks are not configured.")


class InvalidSignatureError(AppError):
    code = "invalid_signature"

    def __init__(self) -> None:
        super().__init__("The Stripe-Signature header does not match the payload.")
