"""GET /api/holds/ and GET /api/holds/{id}/: members see their own holds, staff everyone's;
a WAITING hold shows its place in the queue, a READY one the day to collect it by."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import assert_error, day

HOLDS = "/api/holds/"


def ids(body: dict[str, Any]) -> list[int]:
    return [hold["id"] for hold in body["results"]]


@pytest.fixture
async def queue(factory) -> dict[str, Any]:
    """Two members, two books: Emma's queue is [ann, bob] (bob's first hold was collected),
    Persuasion's is [bob], and a copy of Persuasion waits for ann."""
    ann, bob = await factory.member(), await factory.member()
    emma, persuasion = await factory.books(
        [{"inventory": 0, "title": "Emma"}, {"inventory": 0, "title": "Persuasion"}]
    )
    holds = {
        "bob_emma_old": await factory.hold(bob, emma, status="FULFILLED", ready_until=day(-2)),
        "ann_emma": await factory.hold(ann, emma),
        "ann_persuasion": await factory.hold(ann, persuasion, status="READY", ready_until=day(2)),
        "bob_emma": await factory.hold(bob, emma),
        "bob_persuasion": await factory.hold(bob, persuasion),
    }
    return {"ann": ann, "bob": bob, "emma": emma, "persuasion": persuasion, **holds}


async def test_a_member_lists_their_own_holds_newest_first(client, factory, queue, frozen_today):
    r = await client.get(HOLDS, headers=factory.auth(queue["ann"]))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["count"] == 2
    assert (body["next"], body["previous"]) == (None, None)
    assert ids(body) == [queue["ann_persuasion"].id, queue["ann_emma"].id]
    ready, waiting = body["results"]
    assert ready["status"] == "READY"
    assert ready["ready_until"] == day(2).isoformat()
    assert ready["position"] is None
    assert ready["book"]["title"] == "Persuasion"
    assert waiting["status"] == "WAITING"
    assert waiting["position"] == 1
    assert waiting["ready_until"] is None
    assert waiting["book"]["title"] == "Emma"


async def test_a_member_cannot_list_another_members_holds(client, factory, queue, frozen_today):
    """A user_id filter is ignored for members: they see their own."""
    url = f"{HOLDS}?user_id={queue['bob'].id}"
    r = await client.get(url, headers=factory.auth(queue["ann"]))
    assert r.status_code == 200, r.text
    assert ids(r.json()) == [queue["ann_persuasion"].id, queue["ann_emma"].id]


async def test_position_counts_only_the_waiting_holds_ahead(client, factory, queue, frozen_today):
    r = await client.get(HOLDS, headers=factory.auth(queue["bob"]))
    by_id = {hold["id"]: hold for hold in r.json()["results"]}
    # Emma: ann waits ahead of bob; bob's collected hold does not count
    assert by_id[queue["bob_emma"].id]["position"] == 2
    # Persuasion: ann's copy is put aside, so bob is next
    assert by_id[queue["bob_persuasion"].id]["position"] == 1
    closed = by_id[queue["bob_emma_old"].id]
    assert (closed["status"], closed["position"]) == ("FULFILLED", None)


async def test_staff_see_every_hold(client, factory, queue, frozen_today):
    staff = factory.auth(await factory.staff())
    r = await client.get(HOLDS, headers=staff)
    assert r.status_code == 200, r.text
    assert r.json()["count"] == 5
    assert ids(r.json()) == sorted(ids(r.json()), reverse=True)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("user_id={ann.id}", ["ann_persuasion", "ann_emma"]),
        ("book_id={emma.id}", ["bob_emma", "ann_emma", "bob_emma_old"]),
        ("status=WAITING", ["bob_persuasion", "bob_emma", "ann_emma"]),
        ("status=READY", ["ann_persuasion"]),
        ("user_id={bob.id}&book_id={emma.id}&status=WAITING", ["bob_emma"]),
        ("user_id={bob.id}&status=READY", []),
    ],
)
async def test_staff_filter_holds(client, factory, queue, frozen_today, query, expected):
    staff = factory.auth(await factory.staff())
    r = await client.get(f"{HOLDS}?{query.format(**queue)}", headers=staff)
    assert r.status_code == 200, r.text
    assert r.json()["count"] == len(expected)
    assert ids(r.json()) == [queue[name].id for name in expected]


async def test_the_list_paginates(client, factory, queue, frozen_today):
    staff = factory.auth(await factory.staff())
    r = await client.get(f"{HOLDS}?limit=2", headers=staff)
    body = r.json()
    assert body["count"] == 5
    assert len(body["results"]) == 2
    assert body["previous"] is None
    assert "offset=2" in body["next"]
    last = await client.get(f"{HOLDS}?limit=2&offset=4", headers=staff)
    assert ids(last.json()) == [queue["bob_emma_old"].id]
    assert last.json()["next"] is None
    assert last.json()["previous"]


async def test_a_member_reads_their_hold(client, factory, queue, frozen_today):
    hold = queue["bob_emma"]
    r = await client.get(f"{HOLDS}{hold.id}/", headers=factory.auth(queue["bob"]))
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["id"], body["status"], body["position"]) == (hold.id, "WAITING", 2)
    assert body["user_id"] == queue["bob"].id
    assert body["book"]["id"] == queue["emma"].id


async def test_another_members_hold_is_not_found(client, factory, queue, frozen_today):
    r = await client.get(f"{HOLDS}{queue['bob_emma'].id}/", headers=factory.auth(queue["ann"]))
    assert_error(r, 404, "hold_not_found")
    r = await client.get(f"{HOLDS}999999/", headers=factory.auth(queue["ann"]))
    assert_error(r, 404, "hold_not_found")


async def test_staff_read_any_hold(client, factory, queue, frozen_today):
    staff = factory.auth(await factory.staff())
    r = await client.get(f"{HOLDS}{queue['ann_persuasion'].id}/", headers=staff)
    assert r.status_code == 200, r.text
    assert r.json()["ready_until"] == day(2).isoformat()


@pytest.mark.parametrize("url", [HOLDS, f"{HOLDS}1/"])
async def test_anonymous_cannot_read_holds(client, queue, url):
    assert_error(await client.get(url), 401, "not_authenticated")
