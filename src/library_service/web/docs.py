"""The documentation pages, Swagger UI and ReDoc, with their scripts served by the app itself,
and the front page that points to them.

FastAPI's own pages load Swagger UI and ReDoc from a public CDN and stay blank on a machine
without internet. These load the copies that the `fastapi-offline` package ships and keeps
current, following FastAPI's recipe for self-hosted docs assets
(https://fastapi.tiangolo.com/how-to/custom-docs-ui-assets/).

The assets (2.8 MB, Swagger UI's bundle alone 1.5 MB) are read and gzipped once at start-up
and served under a URL naming their content's hash, so a browser may keep them a year and
fetches new ones only when the package changes them.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import html
import mimetypes
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

ASSETS_URL = "/static/docs"
ASSETS_DIR = Path(str(files("fastapi_offline").joinpath("static")))
# ReDoc's script shows its vendor's logo from a CDN; served here with an empty image instead
# (the page's policy would refuse the CDN, and the console would say so).
REDOC_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
EMPTY_IMAGE = b"data:image/gif;base64,R0lGODlhAQABAAAAACH5BAEKAAEALAAAAAABAAEAAAICTAEAOw=="
IMMUTABLE = "public, max-age=31536000, immutable"  # the URL changes with the content
FAVICON_CACHE = "public, max-age=86400"
SWAGGER_UI_PATHS = ("/docs", "/api/docs/")
REDOC_PATH = "/redoc"
# The pages may load nothing from elsewhere. Allowed: the pages' inline start-up script, the
# inline styles both UIs set, images in data: URLs, and the worker ReDoc's search runs in.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; worker-src 'self' blob:"
)


@dataclass(frozen=True, slots=True)
class Asset:
    content: bytes
    gzipped: bytes | None  # None: not worth compressing (an image)
    media_type: str


@functools.cache  # read and compressed once per process, however many apps it makes
def load_assets(directory: Path = ASSETS_DIR) -> tuple[str, dict[str, Asset]]:
    """The docs assets by file name, and a version naming their content."""
    assets: dict[str, Asset] = {}
    digest = hashlib.sha256()
    for path in sorted(directory.iterdir()):
        content = path.read_bytes()
        if path.name == "redoc.standalone.js":
            content = content.replace(REDOC_LOGO, EMPTY_IMAGE)
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        compressible = media_type.startswith("text/") or media_type.endswith("javascript")
        gzipped = gzip.compress(content, mtime=0) if compressible else None
        assets[path.name] = Asset(content, gzipped, media_type)
        digest.update(path.name.encode() + b"\0" + content)
    return digest.hexdigest()[:12], assets


def install_docs(app: FastAPI) -> None:
    """Serve Swagger UI at /docs and /api/docs/, ReDoc at /redoc, their assets beneath
    ASSETS_URL/<version>/, the favicon at /favicon.ico. The app is created with
    `docs_url=None, redoc_url=None`."""
    version, assets = load_assets()
    assets_url = f"{ASSETS_URL}/{version}"

    async def swagger_ui(request: Request) -> HTMLResponse:
        root = _root_path(request)
        page = get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{assets_url}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{assets_url}/swagger-ui.css",
            swagger_favicon_url=f"{root}{assets_url}/favicon.png",
            swagger_ui_parameters=app.swagger_ui_parameters,
        )
        return _self_contained(page)

    async def redoc(request: Request) -> HTMLResponse:
        root = _root_path(request)
        page = get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{assets_url}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{assets_url}/favicon.png",
            with_google_fonts=False,  # fonts from Google would be a request to the internet
        )
        return _self_contained(page)

    async def asset(request: Request, asset_version: str, name: str) -> Response:
        found = assets.get(name)
        if found is None or asset_version != version:  # never an old URL with new content
            return JSONResponse({"detail": "Not Found"}, status_code=404)
        return _asset_response(request, found, IMMUTABLE)

    async def favicon(request: Request) -> Response:
        return _asset_response(request, assets["favicon.png"], FAVICON_CACHE)

    for path in SWAGGER_UI_PATHS:
        app.add_api_route(path, swagger_ui, include_in_schema=False)
    app.add_api_route(REDOC_PATH, redoc, include_in_schema=False)
    app.add_api_route(
        f"{ASSETS_URL}/{{asset_version}}/{{name}}",
        asset,
        methods=["GET", "HEAD"],
        include_in_schema=False,
    )
    app.add_api_route("/favicon.ico", favicon, methods=["GET", "HEAD"], include_in_schema=False)
    _add_home(app)


def _asset_response(request: Request, asset: Asset, cache_control: str) -> Response:
    headers = {"Cache-Control": cache_control}
    if asset.gzipped is None or "gzip" not in request.headers.get("accept-encoding", ""):
        # A text asset goes out through GZipMiddleware, which adds `Vary: Accept-Encoding`.
        return Response(asset.content, media_type=asset.media_type, headers=headers)
    # Compressed once at start-up; GZipMiddleware passes an encoded answer on as it is.
    headers.update({"Content-Encoding": "gzip", "Vary": "Accept-Encoding"})
    return Response(asset.gzipped, media_type=asset.media_type, headers=headers)


def _add_home(app: FastAPI) -> None:
    """`/`: where to go from here; a small page for a browser, JSON for an API client."""

    async def home(request: Request) -> Response:
        root = _root_path(request)
        links = {
            "docs": f"{root}/docs",
            "redoc": f"{root}/redoc",
            "openapi": f"{root}{app.openapi_url}",
            "admin": f"{root}/admin/",
        }
        if "text/html" not in request.headers.get("accept", ""):
            return JSONResponse({"name": app.title, "version": app.version, **links})
        items = "".join(
            f'<li><a href="{html.escape(links[key])}">{label}</a></li>'
            for key, label in (
                ("docs", "API documentation (Swagger UI): try every call"),
                ("redoc", "API documentation (ReDoc): read it"),
                ("openapi", "The OpenAPI schema, to generate a client"),
                ("admin", "Staff admin: the circulation desk"),
            )
        )
        page = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(app.title)}</title>"
            f'<link rel="icon" href="{html.escape(root)}/favicon.ico">'
            "<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;"
            "padding:0 1rem;line-height:1.5}</style></head><body>"
            f"<h1>{html.escape(app.title)}</h1>"
            "<p>The library's circulation API: the catalogue, borrowings, holds and payments. "
            "Every route lives under <code>/api/</code> and answers JSON.</p>"
            f"<ul>{items}</ul></body></html>"
        )
        return _self_contained(HTMLResponse(page))

    app.add_api_route("/", home, methods=["GET", "HEAD"], include_in_schema=False)


def _self_contained(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return page


def _root_path(request: Request) -> str:
    """The prefix a proxy serves the app under, as FastAPI's own docs pages honour it."""
    root: str = request.scope.get("root_path", "")
    return root.rstrip("/")
