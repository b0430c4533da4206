"""Names of the notification jobs, as the worker registers them and the queue carries them."""

DELIVER = "notifications.deliver"
RELAY = "notifications.relay"
OVERDUE_REPORT = "notifications.overdue_report"


def delivery_job_id(notification_id: int) -> str:
    """One queued delivery per message: arq refuses a second job with the same id."""
    return f"notification:{notification_id}"


DELIVER_NOTICE = "notices.deliver"
DELIVER_NOTICES = "notices.deliver_batch"
SEND_REMINDERS = "notices.reminders"


def notice_job_id(notice_id: int) -> str:
    return f"notice:{notice_id}"
