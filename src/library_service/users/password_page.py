"""The page a password link opens when there is no front end (FRONTEND_URL unset): the member
types the new password; the form posts it back here, and it is set as the confirm endpoint
sets it. The token in the form is the proof of the e-mail, so no other CSRF token is needed."""

from __future__ import annotations

from pathlib import Path

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import TypeAdapter, ValidationError

from library_service.users.schemas import Password

PAGE_PATH = "/api/users/password-reset/page/"
_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(),
)
_password = TypeAdapter(Password)


def password_problem(password: str, again: str) -> str | None:
    """What is wrong with a password typed twice on the page, as a sentence; None if fine."""
    if password != again:
        return "The two passwords differ."
    try:
        _password.validate_python(password)
    except ValidationError as exc:
        message = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
        return message[:1].upper() + message[1:] + "."
    return None


def page(
    library: str,
    *,
    heading: str = "Choose a new password",
    token: str = "",
    error: str | None = None,
    done: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    html = _templates.get_template("password.html").render(
        heading=heading,
        library=library,
        token=token,
        error=error,
        done=done,
        form=bool(token) and done is None,
        action=PAGE_PATH,
    )
    return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})
