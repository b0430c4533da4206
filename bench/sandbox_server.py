"""The sandbox Stripe in its own process (one process: its sessions live in memory).

python bench/sandbox_server.py --port 9000 --webhook-url http://127.0.0.1:8000/api/payments/webhook/
"""

from __future__ import annotations

import argparse
import logging
import os

import uvicorn

from library_service.dev.fake_stripe import SandboxStripe

logger = logging.getLogger("sandbox")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--webhook-url", required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    sandbox = SandboxStripe(
        public_url=f"http://127.0.0.1:{args.port}",
        webhook_url=args.webhook_url,
        webhook_secret=os.environ["STRIPE_WEBHOOK_SECRET"],
    )
    uvicorn.run(
        sandbox.app,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        # Longer than httpx's 5 s pool expiry, as Stripe's own servers are: with equal
        # timeouts the server can close a connection just as the client reuses it.
        timeout_keep_alive=75,
    )


if __name__ == "__main__":
    main()
