"""The checkout saga (payments/checkout.py) on its own: Stripe first, then `record` under its
locks, and a session that can never be paid if the write does not happen. The real SDK talks
to the sandbox; the writes go to the real database, the deferred jobs to the real Redis."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest
from arq.jobs import Job

from library_service.borrowings.errors import BookUnavailableError
from library_service.core.db import UnitOfWork
from library_service.models import Borrowing, Payment, PaymentType
from library_service.payments import jobs
from library_service.payments.checkout import Charge, CheckoutSaga, CheckoutUrls, OpenedCheckout
from library_service.payments.errors import PaymentProviderUnavailableError
from tests.factories import StripeDown, checkout_requests, count, fetch, open_sessions

FINE = Charge(
    type=PaymentType.FINE,
    title="Emma",
    detail="by Jane Austen: returned 2 day(s) late",
    amount=Decimal("6.00"),
)


@pytest.fixture
def saga(app, db, stripe_mock) -> CheckoutSaga:
    """The saga as a request builds it; Stripe is the sandbox."""
    uow = UnitOfWork(db, app.state.queue)
    return CheckoutSaga(uow, app.state.stripe, CheckoutUrls.for_base("http://testserver"))


@pytest.fixture
async def borrowing(factory) -> Borrowing:
    """What the payments recorded here belong to."""
    return await factory.borrowing(await factory.member(), await factory.book())


class Recorder:
    """A `record` step: writes the payment the saga opened, then fails if told to."""

    def __init__(self, borrowing: Borrowing, fails_with: Exception | None = None) -> None:
        self.borrowing = borrowing
        self.fails_with = fails_with
        self.opened: list[OpenedCheckout] = []

    async def __call__(self, session: Any, opened: OpenedCheckout) -> int:
        self.opened.append(opened)
        payment = opened.new_payment()
        payment.borrowing_id = self.borrowing.id
        session.add(payment)
        await session.flush()
        if self.fails_with is not None:
            raise self.fails_with
        return payment.id


async def run(write: Any, record: Any) -> Any:
    """The block a caller writes inside the saga: here, a `record` step."""
    async with write as (session, opened):
        return await record(session, opened)


async def deferred_jobs(app) -> list[str]:
    """The ids of the jobs waiting in the queue."""
    return [job_id.decode() for job_id in await app.state.queue.zrange("arq:queue", 0, -1)]


async def test_a_session_is_opened_then_the_payment_recorded_with_it(
    saga, borrowing, db, sandbox, app
):
    record = Recorder(borrowing)
    payment_id = await run(saga.open(FINE), record)

    [opened] = record.opened
    assert opened.payment_id == payment_id
    assert opened.charge == FINE
    assert opened.session is not None
    row = await fetch(db, Payment, payment_id)
    assert (row.type, row.status, row.money_to_pay) == ("FINE", "PENDING", Decimal("6.00"))
    assert (row.session_id, row.session_url) == (opened.session.id, opened.session.url)
    assert row.session_expires_at == opened.session.expires_at

    session = sandbox.sessions[opened.session.id]
    assert session["status"] == "open"
    assert session["amount_total"] == 600
    assert session["metadata"] == {"payment_id": str(payment_id)}  # the id reserved first
    [sent] = checkout_requests(sandbox)
    product = sent["line_items"][0]["price_data"]["product_data"]
    assert product == {
        "name": "Late return fine: «Emma»",
        "description": "by Jane Austen: returned 2 day(s) late",
    }
    assert sent["success_url"] == (
        "http://testserver/api/payments/success/?session_id={CHECKOUT_SESSION_ID}"
    )
    assert await deferred_jobs(app) == []  # the session is there: nothing to attach later


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(BookUnavailableError(), id="a-rule-refuses"),
        pytest.param(RuntimeError("a bug"), id="any-exception"),
        pytest.param(KeyError("payment"), id="a-lookup-error"),
    ],
)
async def test_a_record_that_raises_expires_the_session_and_writes_nothing(
    saga, borrowing, db, sandbox, app, failure
):
    record = Recorder(borrowing, fails_with=failure)
    with pytest.raises(type(failure)) as raised:
        await run(saga.open(FINE), record)

    assert raised.value is failure  # the caller's error, as it was
    [opened] = record.opened
    assert opened.session is not None
    assert sandbox.sessions[opened.session.id]["status"] == "expired"  # can never be paid
    assert open_sessions(sandbox) == []
    assert await count(db, Payment) == 0  # the payment it wrote was rolled back
    assert await deferred_jobs(app) == []


async def test_a_session_that_cannot_be_expired_is_left_to_lapse(
    saga, borrowing, db, sandbox, stripe_mock
):
    """Stripe goes down between the two calls: the caller still gets its own error."""
    stripe = stripe_mock.routes["stripe"]

    class StripeGoesDown(Recorder):
        async def __call__(self, session: Any, opened: OpenedCheckout) -> int:
            stripe.side_effect = httpx.ConnectTimeout
            return await super().__call__(session, opened)

    record = StripeGoesDown(borrowing, fails_with=BookUnavailableError())
    with pytest.raises(BookUnavailableError):
        await run(saga.open(FINE), record)

    [opened] = record.opened
    assert opened.session is not None
    assert sandbox.sessions[opened.session.id]["status"] == "open"  # it lapses in 24 h
    assert await count(db, Payment) == 0


async def test_stripe_down_is_unavailable_with_nothing_written(
    saga, borrowing, db, sandbox, stripe_mock, app
):
    record = Recorder(borrowing)
    with StripeDown(stripe_mock), pytest.raises(PaymentProviderUnavailableError):
        await run(saga.open(FINE), record)

    assert record.opened == []  # `record` never ran
    assert await count(db, Payment) == 0
    assert sandbox.sessions == {}
    assert await deferred_jobs(app) == []


async def test_stripe_down_when_it_may_be_writes_the_payment_and_defers_attach(
    saga, borrowing, db, sandbox, stripe_mock, app
):
    record = Recorder(borrowing)
    with StripeDown(stripe_mock):
        payment_id = await run(saga.open(FINE, stripe_may_be_down=True), record)

    [opened] = record.opened
    assert opened.session is None
    row = await fetch(db, Payment, payment_id)
    assert (row.type, row.status, row.money_to_pay) == ("FINE", "PENDING", Decimal("6.00"))
    assert (row.session_id, row.session_url, row.session_expires_at) == (None, None, None)
    assert sandbox.sessions == {}

    job_id = jobs.attach_session_job_id(payment_id)
    assert await deferred_jobs(app) == [job_id]
    info = await Job(job_id, app.state.queue).info()
    assert info is not None
    assert (info.function, info.args) == (jobs.ATTACH_SESSION, (payment_id,))


async def test_a_charge_that_may_wait_opens_one_when_stripe_answers(
    saga, borrowing, db, sandbox, app
):
    record = Recorder(borrowing)
    payment_id = await run(saga.open(FINE, stripe_may_be_down=True), record)

    row = await fetch(db, Payment, payment_id)
    assert row.session_id is not None
    assert open_sessions(sandbox) == [row.session_id]
    assert await deferred_jobs(app) == []


async def test_a_record_that_raises_without_a_session_defers_nothing(
    saga, borrowing, db, stripe_mock, app
):
    record = Recorder(borrowing, fails_with=RuntimeError("a bug"))
    with StripeDown(stripe_mock), pytest.raises(RuntimeError):
        await run(saga.open(FINE, stripe_may_be_down=True), record)

    assert await count(db, Payment) == 0
    assert await deferred_jobs(app) == []  # no job for a payment that was never written


async def test_a_given_payment_id_is_the_one_stripe_is_told(saga, borrowing, db, sandbox):
    first = await run(saga.open(FINE), Recorder(borrowing))
    opened: list[OpenedCheckout] = []

    async def remember(session: Any, checkout: OpenedCheckout) -> None:
        opened.append(checkout)

    await run(saga.reopen(first, FINE), remember)

    [again] = opened
    assert again.payment_id == first
    assert again.session is not None
    assert sandbox.sessions[again.session.id]["metadata"] == {"payment_id": str(first)}
    assert await count(db, Payment) == 1  # no id reserved, no row written by `remember`


async def test_two_runs_open_two_sessions_unless_given_one_idempotency_key(
    saga, borrowing, sandbox
):
    sessions: list[str] = []

    async def remember(session: Any, opened: OpenedCheckout) -> None:
        assert opened.session is not None
        sessions.append(opened.session.id)

    await run(saga.reopen(1, FINE), remember)
    await run(saga.reopen(1, FINE), remember)
    await run(saga.reopen(1, FINE, idempotency_key="payment-1-attach"), remember)
    await run(saga.reopen(1, FINE, idempotency_key="payment-1-attach"), remember)

    assert len(set(sessions[:2])) == 2  # a fresh key each time: two sessions
    assert sessions[2] == sessions[3]  # the same key: Stripe's same session
    assert len(sandbox.sessions) == 3
