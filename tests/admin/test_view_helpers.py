"""The admin views' helpers for actions: a service's refusal fails the action with its
message; a bulk action goes on past a refused row and names every refusal."""

from __future__ import annotations

import pytest
from starlette_admin.exceptions import ActionFailed

from library_service.admin.views.base import for_each_row, refusal_fails_action
from library_service.core.errors import AppError


async def test_a_refusal_fails_the_action_with_its_message():
    with pytest.raises(ActionFailed) as failed, refusal_fails_action():
        raise AppError("This borrowing has already been returned.")
    assert failed.value.msg == "This borrowing has already been returned."


async def test_every_row_is_tried_and_every_refusal_named():
    changed: list[int] = []

    async def change(pk: int) -> None:
        if pk % 2 == 0:
            raise AppError(f"Book {pk} is on loan.")
        changed.append(pk)

    assert await for_each_row(["1", "3"], change, done="deleted") == 2
    with pytest.raises(ActionFailed) as some:
        await for_each_row(["5", "2", "7", "4"], change, done="deleted")
    assert some.value.msg == "2 deleted. #2: Book 2 is on loan. #4: Book 4 is on loan."
    with pytest.raises(ActionFailed) as none:
        await for_each_row(["6"], change, done="deleted")
    assert none.value.msg == "#6: Book 6 is on loan."
    assert changed == [1, 3, 5, 7]
