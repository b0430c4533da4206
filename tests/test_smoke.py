async def test_health(client):
    response = await client.get("/health")
    assert response.status_code == 200


async def test_ready(client):
    response = await client.get("/ready")
    assert response.json() == {"status": "ok", "database": "ok", "redis": "ok"}


async def test_register_and_login(client):
    r = await client.post("/api/users/", json={"email": "A@Example.com", "password": "password123"})
    assert r.status_code == 201, r.text
    assert r.json()["email"] == "a@example.com"
    r = await client.post(
        "/api/users/token/", json={"email": "a@example.com", "password": "password123"}
    )
    assert r.status_code == 200, r.text
    token = r.json()["access"]
    r = await client.get("/api/users/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text


async def test_books(client, factory):
    await factory.book()
    r = await client.get("/api/books/")
    assert r.status_code == 200, r.text
    print(r.json())
    assert r.json()["count"] == 1


async def test_borrow_pay_return_flow(client, factory, browser):
    from datetime import UTC, date, datetime, timedelta

    from library_service.core import clock

    member = await factory.user()
    book = await factory.book(inventory=2, daily_fee="1.50")
    with clock.frozen(datetime(2026, 3, 1, 12, tzinfo=UTC)):
        r = await client.post(
            "/api/borrowings/",
            json={"book": book.id, "expected_return_date": "2026-03-05"},
            headers=factory.auth(member),
        )
        assert r.status_code == 201, r.text
        body = r.json()
        print(body)
        payment = body["payments"][0]
        assert payment["money_to_pay"] == "6.00"
        page = await browser.get(payment["session_url"])
        assert page.status_code == 200
        r = await browser.post(payment["session_url"] + "/pay")
        assert r.status_code == 303
        r = await client.get(r.headers["location"])
        assert r.status_code == 200, r.text
        assert r.json()["payment"]["status"] == "PAID"
    with clock.frozen(datetime(2026, 3, 9, 12, tzinfo=UTC)):
        r = await client.post(f"/api/borrowings/{body['id']}/return/", headers=factory.auth(member))
        assert r.status_code == 200, r.text
        fine = [p for p in r.json()["payments"] if p["type"] == "FINE"][0]
        assert fine["money_to_pay"] == "12.00"
        assert fine["session_url"]
