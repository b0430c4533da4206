"""The desk in a real browser (headless Chromium): lending at the Check-out page and taking
cash, handing over a READY hold, extending, returning with the confirmation that names the
book and the member, waiving a fine with a reason, a member's and a book's pages, and the
Activity view."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from playwright.async_api import expect
from sqlalchemy import select, update

from library_service.core import clock
from library_service.models import AuditEntry, Borrowing, Hold, MemberNotice, Payment
from tests.factories import the_payment

ALERT = ".alert[role=alert]"  # the flashed message (the modals have alerts of their own)
MODAL = "#modal-action"


async def test_lend_to_a_member_at_the_check_out_page_and_take_cash(
    signed_in, admin_url, factory, rows, staff
):
    member = await factory.user(email="rita@example.com", first_name="Rita", last_name="Reader")
    await factory.user(email="ritter@example.com", first_name="Rita", last_name="Ritter")
    await factory.book(title="Emma", isbn="9780141439587", daily_fee=Decimal("0.50"))
    await factory.book(title="Dead Souls", inventory=1)

    page = await signed_in()
    await page.get_by_role("link", name="Check out").first.click()
    await page.get_by_label("Member").fill("Rita Reader")
    await page.get_by_label("Book").fill("978-0-14-143958-7")
    await page.get_by_role("button", name="Find").click()
    await expect(page.locator("#checkout-lend input[name=user]")).to_have_count(1)
    await expect(page.locator("#checkout-lend input[name=book]")).to_be_checked()
    due = clock.today(factory.settings.timezone) + timedelta(days=14)
    await expect(page.get_by_label("Due back on")).to_have_value(due.isoformat())
    await page.get_by_role("button", name="Lend").click()
    await expect(page.locator("#checkout-lent h2")).to_have_text(
        "Lent: «Emma» to Rita Reader <rita@example.com>"
    )
    await expect(page.locator("#checkout-fee")).to_have_text("$7.00")
    await page.get_by_role("button", name="Paid in cash").click()
    await expect(page.locator("#checkout-done h2")).to_have_text("Paid in cash: $7.00")

    [borrowing] = await rows.all(select(Borrowing))
    assert (borrowing.user_id, borrowing.expected_return_date) == (member.id, due)
    [fee] = await rows.all(select(Payment))
    assert (fee.status, fee.method, fee.recorded_by) == ("PAID", "cash", staff.id)

    # A second loan, paid on the member's phone: the desk hands over the link.
    await page.get_by_role("link", name="Next check-out").click()
    await page.get_by_label("Member").fill("rita@example.com")
    await page.get_by_label("Book").fill("Dead Souls")
    await page.get_by_role("button", name="Find").click()
    await page.get_by_role("button", name="Lend").click()
    await page.get_by_role("button", name="Send the payment link").click()
    [_, fee] = await rows.all(select(Payment).order_by(Payment.id))
    await expect(page.locator("#payment-link")).to_have_value(fee.session_url)
    notices = await rows.all(select(MemberNotice).where(MemberNotice.kind == "payment_link"))
    assert [notice.user_id for notice in notices] == [member.id]  # e-mailed, and in the app

    # Lending it again: refused with the rule's sentence, nothing lent.
    await page.goto(f"{admin_url}/checkout?member_q=%23{member.id}&book_q=Dead+Souls")
    await page.get_by_role("button", name="Lend").click()
    await expect(page.locator("#checkout-error")).to_contain_text("No copy of this book")
    assert len(await rows.all(select(Borrowing))) == 2

    await page.goto(f"{admin_url}/")
    await expect(page.locator("#cash-today .h1")).to_have_text("$7.00")
    await expect(page.locator("#unpaid-fees .h1")).to_have_text("1")
    await expect(page.locator("#unpaid-fines .h1")).to_have_text("0")


async def test_hand_over_a_ready_hold_then_extend_the_loan(signed_in, admin_url, factory, rows):
    member = await factory.user(email="holder@example.com")
    book = await factory.book(title="Middlemarch", inventory=0)
    hold = await factory.hold(member, book, status="READY")

    page = await signed_in()
    await expect(page.locator("#ready-holds .h1")).to_have_text("1")
    await page.locator("#ready-holds").click()
    await page.wait_for_url("**/holds/list?**")  # loaded: its scripts bind the buttons
    await page.locator("tbody tr").first.get_by_text("Check out to the member").click()
    await expect(page.locator(MODAL)).to_contain_text("Lend «Middlemarch» to holder@example.com")
    await page.locator(MODAL).get_by_role("button", name="Lend it").click()
    await expect(page.locator(ALERT)).to_contain_text(f"Hold #{hold.id} handed over")
    assert (await rows.get(Hold, hold.id)).status == "FULFILLED"
    [borrowing] = await rows.all(select(Borrowing))

    new_due = borrowing.expected_return_date + timedelta(days=5)
    await page.goto(f"{admin_url}/borrowings/detail?pk={borrowing.id}")
    await page.get_by_role("button", name="Extend").click()
    await page.locator(MODAL).get_by_label("New due date").fill(new_due.isoformat())
    await page.locator(MODAL).get_by_role("button", name="Extend the loan").click()
    await expect(page.locator(ALERT)).to_contain_text(f"extended to {new_due}")
    extended = await rows.get(Borrowing, borrowing.id)
    assert (extended.expected_return_date, extended.extensions) == (new_due, 1)


async def test_return_names_book_and_member_then_waive_the_fine_with_a_reason(
    signed_in, admin_url, factory, rows, db
):
    member = await factory.user(email="late@example.com", first_name="Lou", last_name="Late")
    book = await factory.book(title="Dead Souls", daily_fee=Decimal("1.50"))
    late = await rows.borrowing(member, book, days_ago=9, due_days_ago=2, fee="3.00")
    async with db.sessionmaker() as session, session.begin():
        await session.execute(
            update(Payment).where(Payment.borrowing_id == late.id).values(status="EXPIRED")
        )

    page = await signed_in()
    await page.goto(f"{admin_url}/borrowings/list")
    await page.locator("tbody tr").first.get_by_text("Return").click()
    modal = page.locator(MODAL)
    await expect(modal.locator(".return-what")).to_contain_text(
        "«Dead Souls» by Jane Austen, lent to Lou Late <late@example.com>"
    )
    await expect(modal.locator(".return-fine")).to_contain_text("a FINE of $6.00")
    await expect(modal.locator(".return-unpaid")).to_contain_text(
        "Unpaid borrowing fee of $3.00 (EXPIRED)"
    )
    await modal.get_by_role("button", name="Record the return").click()
    await expect(page.locator(ALERT)).to_contain_text("returned late: FINE of $6.00")

    [fine] = await rows.all(select(Payment).where(Payment.type == "FINE"))
    await page.goto(f"{admin_url}/payments/detail?pk={fine.id}")
    await page.get_by_role("button", name="Waive").click()
    await page.locator(MODAL).get_by_label("Reason (required)").fill("Returned in the flood")
    await page.locator(MODAL).get_by_role("button", name="Waive").click()
    await expect(page.locator(ALERT)).to_contain_text(f"Payment #{fine.id} ($6.00) waived")
    await page.goto(f"{admin_url}/")
    await expect(page.locator("#waived-today")).to_have_text("$6.00 waived (1), not collected")
    await expect(page.locator("#cash-today .h1")).to_have_text("$0.00")
    await page.goto(f"{admin_url}/payments/detail?pk={fine.id}")
    waived = await rows.get(Payment, fine.id)
    assert (waived.status, waived.method) == ("WAIVED", "waived")
    await expect(page.get_by_role("button", name="Waive")).to_have_count(0)
    [entry] = await rows.all(select(AuditEntry).where(AuditEntry.action == "payment.waive"))
    assert entry.reason == "Returned in the flood"


async def test_a_members_page_a_books_page_and_the_activity_view(
    signed_in, admin_url, factory, rows, client, staff
):
    member = await factory.user(email="ada@example.com", first_name="Ada", last_name="Lovelace")
    other = await factory.user(email="grace@example.com", first_name="Grace", last_name="Hopper")
    ulysses = await factory.book(title="Ulysses")
    paid = await factory.borrow_ok(client, staff, ulysses, user=member.id)
    cash = await client.post(
        f"/api/payments/{the_payment(paid)['id']}/cash/", headers=factory.auth(staff)
    )
    assert cash.status_code == 200, cash.text
    book = await factory.book(title="Emma", inventory=0)
    await rows.borrowing(member, book, days_ago=10, due_days_ago=3)
    await rows.borrowing(other, book, days_ago=1, due_days_ago=-6)
    fine_loan = await rows.borrowing(
        member, await factory.book(title="Persuasion"), days_ago=9, due_days_ago=2, returned=True
    )
    await factory.payment(fine_loan, type="FINE", amount="2.00")
    await factory.hold(other, book, status="READY")
    await factory.hold(member, book)
    await factory.hold(await factory.user(email="third@example.com"), book)

    page = await signed_in()
    await page.goto(f"{admin_url}/members/detail?pk={member.id}")
    await expect(page.locator("#owed-fees")).to_have_text("$0.00")
    await expect(page.locator("#owed-fines")).to_have_text("$2.00")
    await expect(page.locator("#owed-total")).to_have_text("$2.00")
    await expect(page.locator("#member-borrowings .loan-overdue")).to_have_text("Overdue 3 days")
    await expect(page.locator("#member-holds tbody tr")).to_have_count(1)
    await expect(page.locator("#member-holds")).to_contain_text("WAITING")
    activity = page.locator("#activity tbody tr")
    await expect(activity).to_have_count(2)
    await expect(activity.first).to_contain_text("Paid in cash")

    await page.goto(f"{admin_url}/books/detail?pk={book.id}")
    await expect(page.locator("#copies-shelf")).to_have_text("0")
    await expect(page.locator("#copies-on-loan")).to_have_text("2")
    await expect(page.locator("#copies-ready")).to_have_text("1")
    await expect(page.locator("#copies-waiting")).to_have_text("2")
    queue = page.locator("#book-queue tbody tr")
    await expect(queue).to_have_count(3)
    await expect(queue.nth(0)).to_contain_text("Grace Hopper <grace@example.com>")
    await expect(queue.nth(1)).to_contain_text("Ada Lovelace")
    await expect(queue.nth(2)).to_contain_text("third@example.com")
    await expect(page.locator("#book-loans")).to_contain_text("Ada Lovelace")
    await expect(page.get_by_text("No staff action yet.")).to_be_visible()

    await page.goto(f"{admin_url}/books/detail?pk={ulysses.id}")  # lent at the desk, paid
    book_activity = page.locator("#activity tbody tr")
    await expect(book_activity).to_have_count(2)
    await expect(book_activity.nth(0)).to_contain_text("Paid in cash")
    await expect(book_activity.nth(1)).to_contain_text("Lent")

    await page.get_by_role("link", name="Activity").first.click()
    await expect(page.locator("tbody tr")).to_have_count(2)
    await page.get_by_role("link", name="Payments", exact=True).last.click()
    await expect(page.locator("tbody tr")).to_have_count(1)
    await expect(page.locator("tbody tr").first).to_contain_text("Paid in cash")
    await expect(page.locator("tbody tr").first).to_contain_text("PENDING")
