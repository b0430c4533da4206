"""JSON request bodies as RFC 8259 defines them.

Python's json module also accepts NaN, Infinity, numbers that overflow a float and lone
UTF-16 surrogates (`"\\ud800"`). None of them can be stored, and FastAPI's 422 cannot even
echo them back (JSON has no NaN, UTF-8 has no lone surrogate), so such a body would answer
500. Here it is malformed JSON, a 422 like any other.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from starlette.convertors import Convertor, register_url_convertor

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_BODYLESS_METHODS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError("number out of range")
    return value


def _check_strings(value: Any) -> None:
    """Raise UnicodeEncodeError on a string with a lone surrogate (a pair is decoded to one
    character by the parser and encodes fine)."""
    if isinstance(value, str):
        value.encode()
    elif isinstance(value, dict):
        for key, item in value.items():
            key.encode()
            _check_strings(item)
    elif isinstance(value, list):
        for item in value:
            _check_strings(item)


def loads(body: bytes) -> Any:
    """Parse JSON, refusing what RFC 8259 does not allow (json.JSONDecodeError)."""
    text = body.decode()  # not UTF-8: UnicodeDecodeError, answered 422 too
    try:
        value = json.loads(text, parse_constant=_no_constants, parse_float=_finite)
        if _SURROGATE_ESCAPE.search(body):
            _check_strings(value)
    except json.JSONDecodeError:
        raise
    except ValueError as exc:  # also "too many digits" from int() and UnicodeEncodeError
        raise json.JSONDecodeError(str(exc).split(":")[0], text, 0) from exc
    return value


class StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads(await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    """A route whose JSON body is parsed by `loads`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_json_handler(request: Request) -> Response:
            if request.method in _BODYLESS_METHODS:
                return await handler(request)
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict_json_handler


class DigitsConvertor(Convertor[str]):
    """`{name:digits}`: a path segment of ASCII digits, handed on as text for the parameter's
    own validation (`IdPath`: a 422 when out of range). Starlette's `int` convertor parses
    it in the router instead, where a number past Python's 4,300-digit limit raises
    ValueError: a 500."""

    regex = "[0-9]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return str(value)


register_url_convertor("digits", DigitsConvertor())


def domain_router(domain: str) -> APIRouter:
    """A domain's routes: under /api/<domain>, tagged with it, their JSON bodies parsed by
    `loads`."""
    return APIRouter(route_class=StrictJSONRoute, prefix=f"/api/{domain}", tags=[domain])
