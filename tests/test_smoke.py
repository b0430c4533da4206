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
