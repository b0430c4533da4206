"""Every table's model; importing this package registers them all (Alembic uses it)."""

from library_service.models.audit_entry import AuditEntry
from library_service.models.base import Base, table_of
from library_service.models.book import Book, Cover
from library_service.models.borrowing import Borrowing
from library_service.models.hold import OPEN_HOLD_STATUSES, Hold, HoldStatus
from library_service.models.idempotency_key import IdempotencyKey
from library_service.models.member_notice import MemberNotice, NoticeStatus
from library_service.models.notification import Notification, NotificationStatus, OverdueReport
from library_service.models.password_token import PasswordToken
from library_service.models.payment import Payment, PaymentMethod, PaymentStatus, PaymentType
from library_service.models.stripe_event import StripeEvent
from library_service.models.user import User

__all__ = [
    "OPEN_HOLD_STATUSES",
    "AuditEntry",
    "Base",
    "Book",
    "Borrowing",
    "Cover",
    "Hold",
    "HoldStatus",
    "IdempotencyKey",
    "MemberNotice",
    "NoticeStatus",
    "Notification",
    "NotificationStatus",
    "OverdueReport",
    "PasswordToken",
    "Payment",
    "PaymentMethod",
    "PaymentStatus",
    "PaymentType",
    "StripeEvent",
    "User",
    "table_of",
]
