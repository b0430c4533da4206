"""Examples in the OpenAPI document that depend on the day.

Swagger UI's "Try it out" sends a request body's example as it is, and a borrowing must end
after today: its example date is set afresh, from the library's clock, each time the
document is served.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import FastAPI

from library_service.core import clock
from library_service.core.config import Settings

# schema name -> (field, days from today): a loan of a week, extended by another week.
DATED_EXAMPLES = {
    "BorrowingCreate": ("expected_return_date", 7),
    "BorrowingExtend": ("expected_return_date", 14),
}


def install_dated_examples(app: FastAPI, settings: Settings) -> None:
    generate = app.openapi  # builds the document once, then returns it from a cache

    def openapi() -> dict[str, Any]:
        document = generate()
        today = clock.today(settings.timezone)
        schemas = document["components"]["schemas"]
        for name, (field, days) in DATED_EXAMPLES.items():
            for example in schemas[name].get("examples", []):
                example[field] = (today + timedelta(days=days)).isoformat()
        return document

    app.openapi = openapi  # type: ignore[method-assign]
