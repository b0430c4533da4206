"""Telegram Bot API client: sends the staff chat its messages (`sendMessage`)."""

from __future__ import annotations

import logging
import time
import urllib.request

import httpx

from library_service.core.config import Settings

logger = logging.getLogger(__name__)


# Failures that happen before the request leaves: the message surely did not arrive.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class TelegramError(Exception):
    """Not delivered this time.

    `retry_after` (seconds): Telegram asked for a pause. `uncertain`: the request went out
    and no answer came, so the message may have arrived all the same.
    """

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        permanent: bool = False,
        uncertain: bool = False,
    ):
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent
        self.uncertain = uncertain


class TelegramClient:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # Connecting fails fast, but once the message is out the answer is waited for: a
        # send given up too early is sent again, and Telegram then shows it twice.
        send = settings.TELEGRAM_SEND_TIMEOUT_SECONDS
        timeout = httpx.Timeout(send, connect=settings.TELEGRAM_TIMEOUT_SECONDS)
        self._extensions = {"timeout": timeout.as_dict()}
        base = settings.TELEGRAM_API_BASE.rstrip("/")
        self._url = httpx.URL(f"{base}/bot{settings.TELEGRAM_BOT_TOKEN}/sendMessage")
        # httpx's connection pool without a client around it: every send goes to one URL
        # and needs none of a client's base URL and header merging, cookie jar, auth or
        # redirect steps, which cost a tenth of the worker's CPU per message
        # (bench/worker.py). The proxy is the one a client would have taken from the
        # environment.
        self._transport = httpx.AsyncHTTPTransport(proxy=environment_proxy(self._url))
        self._resume_at = 0.0  # time.monotonic() before which Telegram asked us not to send

    @property
    def configured(self) -> bool:
        return bool(self.settings.TELEGRAM_BOT_TOKEN and self.settings.TELEGRAM_CHAT_ID)

    def paused_for(self) -> float:
        """Seconds left of the pause Telegram last asked for (429), which holds for every send."""
        return max(0.0, self._resume_at - time.monotonic())

    async def send_message(self, text: str) -> None:
        if not self.configured:
            # No bot configured (the local run): the console is the staff chat.
            logger.info("Telegram not configured; staff message:\n%s", text)
            return
        message = {
            "chat_id": self.settings.TELEGRAM_CHAT_ID,
            "text": text,
            "disable_web_page_preview": True,
        }
        request = httpx.Request("POST", self._url, json=message, extensions=self._extensions)
        try:
            response = await self._transport.handle_async_request(request)
            try:
                await response.aread()
            finally:
                await response.aclose()
        except httpx.HTTPError as exc:
            uncertain = not isinstance(exc, _NOT_SENT)
            raise TelegramError(f"network error: {exc!r}", uncertain=uncertain) from exc
        if response.status_code == 200:
            return
        description = _description(response)
        if response.status_code == 429:
            retry_after = _retry_after(response)
            if retry_after is not None:
                self._resume_at = max(self._resume_at, time.monotonic() + retry_after)
            raise TelegramError(f"rate limited: {description}", retry_after=retry_after)
        # 400 means this message can never be sent (e.g. chat not found, text too long).
        raise TelegramError(
            f"HTTP {response.status_code}: {description}", permanent=response.status_code == 400
        )

    async def close(self) -> None:
        await self._transport.aclose()


def environment_proxy(url: httpx.URL) -> str | None:
    """The proxy HTTPS_PROXY, HTTP_PROXY or ALL_PROXY names for `url`, unless NO_PROXY
    exempts its host: what an httpx client would take from the environment."""
    if urllib.request.proxy_bypass(url.host):
        return None
    proxies = urllib.request.getproxies()
    return proxies.get(url.scheme) or proxies.get("all")


def _description(response: httpx.Response) -> str:
    try:
        return str(response.json().get("description", response.text))[:300]
    except ValueError:
        return response.text[:300]


def _retry_after(response: httpx.Response) -> float | None:
    try:
        value = response.json()["parameters"]["retry_after"]
    except (ValueError, KeyError, TypeError):
        value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
