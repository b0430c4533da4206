"""The documentation pages, Swagger UI and ReDoc, with their scripts served by the app itself.

FastAPI's own pages load Swagger UI and ReDoc from a public CDN and stay blank on a machine
without internet. These load the copies that the `fastapi-offline` package ships and keeps
current, following FastAPI's recipe for self-hosted docs assets
(https://fastapi.tiangolo.com/how-to/custom-docs-ui-assets/).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/static/docs"
ASSETS_DIR = Path(str(files("fastapi_offline").joinpath("static")))
SWAGGER_UI_PATHS = ("/docs", "/api/docs/")
REDOC_PATH = "/redoc"
# The pages may load nothing from elsewhere: ReDoc's sidebar logo, built into its script,
# comes from its vendor's CDN; refused here, ReDoc leaves it out. Allowed: the pages' inline
# start-up script, the inline styles both UIs set, and the worker ReDoc's search runs in.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; worker-src 'self' blob:"
)


def install_docs(app: FastAPI) -> None:
    """Serve Swagger UI at /docs and /api/docs/, ReDoc at /redoc, their assets beneath
    ASSETS_URL. The app is created with `docs_url=None, redoc_url=None`."""
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS_DIR), name="docs-assets")

    async def swagger_ui(request: Request) -> HTMLResponse:
        root = _root_path(request)
        page = get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            swagger_ui_parameters=app.swagger_ui_parameters,
        )
        return _self_contained(page)

    async def redoc(request: Request) -> HTMLResponse:
        root = _root_path(request)
        page = get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            with_google_fonts=False,  # fonts from Google would be a request to the internet
        )
        return _self_contained(page)

    for path in SWAGGER_UI_PATHS:
        app.add_api_route(path, swagger_ui, include_in_schema=False)
    app.add_api_route(REDOC_PATH, redoc, include_in_schema=False)


def _self_contained(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return page


def _root_path(request: Request) -> str:
    """The prefix a proxy serves the app under, as FastAPI's own docs pages honour it."""
    root: str = request.scope.get("root_path", "")
    return root.rstrip("/")
