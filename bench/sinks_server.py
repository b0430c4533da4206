"""Where the bench's worker delivers, as in production: a Telegram Bot API that answers
`sendMessage` at once, and a real SMTP server (aiosmtpd) that accepts every e-mail and keeps
only a count. One process of their own, so their CPU is not the worker's.

python bench/sinks_server.py --telegram-port 9001 --smtp-port 9002
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Any

import uvicorn
from aiosmtpd.smtp import SMTP
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def send_message(request: Request) -> JSONResponse:
    await request.body()
    return JSONResponse({"ok": True, "result": {}})


class Accept:
    """Every message accepted (250), none kept."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 Message accepted for delivery"


async def serve(telegram_port: int, smtp_port: int) -> None:
    loop = asyncio.get_running_loop()
    smtp = await loop.create_server(
        lambda: SMTP(Accept(), hostname="bench"), host="127.0.0.1", port=smtp_port
    )
    app = Starlette(routes=[Route("/bot{token}/sendMessage", send_message, methods=["POST"])])
    config = uvicorn.Config(
        app, host="127.0.0.1", port=telegram_port, log_level="warning", access_log=False
    )
    try:
        await uvicorn.Server(config).serve()
    finally:
        smtp.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--telegram-port", type=int, required=True)
    parser.add_argument("--smtp-port", type=int, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(serve(args.telegram_port, args.smtp_port))


if __name__ == "__main__":
    main()
