"""Stopping an API process without dropping a request (a deploy restarts them one by one).

uvicorn, on SIGTERM, stops accepting connections at once and finishes the requests in
flight. A load balancer that still believes the process healthy keeps sending it new
connections until its next health check, and those would be refused. So the first SIGTERM
only starts a drain: `/ready` answers 503 from then on (the balancer's cue to send nothing
new), every answer carries `Connection: close` (keep-alive clients reconnect, through the
balancer, to another process), and the process keeps serving for SHUTDOWN_DRAIN_SECONDS.
Then uvicorn gets the signal and shuts down gracefully as before. A second SIGTERM, or
SIGINT (Ctrl-C), goes to uvicorn at once.

The handler is installed from the app's lifespan, which uvicorn runs after installing its
own handlers: it wraps uvicorn's, in each of `--workers N` processes alike. Without uvicorn
(the tests' in-process app) there is no handler to wrap and nothing is installed.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from types import FrameType
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)

Handler = Any  # what signal.getsignal() returns


class Drain:
    """This process's drain: started by the first SIGTERM, read by /ready and the middleware."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.draining = False
        self._previous: Handler = None

    def install(self) -> None:
        """Wrap the SIGTERM handler in place (uvicorn's), if there is one to wrap."""
        if threading.current_thread() is not threading.main_thread():
            return
        previous = signal.getsignal(signal.SIGTERM)
        if not callable(previous):  # no server's handler: the default, or ignored
            return
        self._previous = previous
        loop = asyncio.get_running_loop()

        def on_sigterm(signum: int, frame: FrameType | None) -> None:
            if self.draining:  # a second SIGTERM: stop now
                previous(signum, frame)
                return
            self.start()
            loop.call_soon_threadsafe(loop.call_later, self.seconds, previous, signum, None)

        signal.signal(signal.SIGTERM, on_sigterm)

    def uninstall(self) -> None:
        if self._previous is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None

    def start(self) -> None:
        self.draining = True
        logger.info(
            "SIGTERM: /ready answers 503; serving %.1f s more, then finishing the requests "
            "in flight",
            self.seconds,
        )


class DrainMiddleware:
    """While draining, every answer asks the client to close its connection."""

    def __init__(self, app: ASGIApp, drain: Drain) -> None:
        self.app = app
        self.drain = drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.drain.draining:
            await self.app(scope, receive, send)
            return

        async def closing(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() != b"connection"
                ]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, closing)
