"""Names of the payment jobs, as the worker registers them and the queue carries them."""

ATTACH_SESSION = "payments.attach_session"
ATTACH_MISSING_SESSIONS = "payments.attach_missing_sessions"
POLL_EXPIRED_SESSIONS = "payments.poll_expired_sessions"


def attach_session_job_id(payment_id: int) -> str:
    """One queued attachment per payment."""
    return f"attach-session:{payment_id}"
