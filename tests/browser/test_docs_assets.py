"""The docs pages load everything from the app itself: they work without internet."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import httpx
import pytest

DOCS_PAGES = ["/docs", "/api/docs/", "/api/docs", "/redoc"]
CONTENT_TYPES = {
    ".js": "javascript",
    ".css": "text/css",
    ".png": "image/png",
}


class AssetLinks(HTMLParser):
    """The URLs a page loads: script src, link href, img src."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"script": "src", "link": "href", "img": "src"}.get(tag)
        self.urls += [value for name, value in attrs if name == wanted and value]


def asset_links(html: str) -> list[str]:
    parser = AssetLinks()
    parser.feed(html)
    return parser.urls


@pytest.mark.parametrize("path", DOCS_PAGES)
async def test_docs_pages_load_only_same_origin_assets_that_answer(client, path):
    page = await client.get(path)
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    urls = asset_links(page.text)
    assert len(urls) >= 2, urls  # the script, and the favicon (and Swagger UI's styles)
    for url in urls:
        assert url.startswith("/static/docs/"), url  # a path on this server, not //host
        asset = await client.get(url)
        assert asset.status_code == 200, url
        suffix = url[url.rindex(".") :]
        assert CONTENT_TYPES[suffix] in asset.headers["content-type"], url
        assert len(asset.content) > 1000, url
    assert "http://" not in page.text
    assert "https://" not in page.text


@pytest.mark.parametrize("path", ["/docs", "/api/docs/"])
async def test_swagger_ui_keeps_the_authorization_across_reloads(client, path):
    page = await client.get(path)
    assert '"persistAuthorization": true' in page.text
    assert "url: '/openapi.json'" in page.text
    assert re.search(r"/static/docs/[0-9a-f]{12}/swagger-ui-bundle\.js", page.text)
    assert re.search(r"/static/docs/[0-9a-f]{12}/swagger-ui\.css", page.text)


async def test_redoc_loads_its_bundle_without_web_fonts(client):
    page = await client.get("/redoc")
    assert '<redoc spec-url="/openapi.json">' in page.text
    assert re.search(r"/static/docs/[0-9a-f]{12}/redoc\.standalone\.js", page.text)
    assert "fonts.googleapis.com" not in page.text
    (bundle,) = [url for url in asset_links(page.text) if url.endswith(".js")]
    script = (await client.get(bundle)).text
    assert "cdn.redoc.ly" not in script  # its vendor's logo is not fetched from a CDN


async def test_behind_a_path_prefix_the_pages_name_prefixed_urls(app):
    """A proxy that serves the app under /library sets root_path; the pages follow it."""
    transport = httpx.ASGITransport(app=app, root_path="/library")
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        swagger = (await http.get("/docs")).text
        redoc = (await http.get("/redoc")).text
    assert "url: '/library/openapi.json'" in swagger
    assert all(url.startswith("/library/static/docs/") for url in asset_links(swagger))
    assert '<redoc spec-url="/library/openapi.json">' in redoc
    assert all(url.startswith("/library/static/docs/") for url in asset_links(redoc))


async def test_docs_assets_are_not_part_of_the_api_schema(client):
    schema = (await client.get("/openapi.json")).json()
    assert not [path for path in schema["paths"] if "docs" in path or "static" in path]


@pytest.mark.parametrize("path", DOCS_PAGES)
async def test_docs_pages_forbid_loading_from_other_origins(client, path):
    policy = (await client.get(path)).headers["content-security-policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["default-src"] == "'self'"
    for name in ("script-src", "style-src", "img-src", "worker-src"):
        assert "http" not in directives[name], policy
        assert "*" not in directives[name], policy


async def test_docs_assets_are_gzipped_once_and_kept_a_year(client):
    """The bundles travel compressed (precompressed at start-up), under a URL naming their
    content, so a browser keeps them until they change."""
    swagger = (await client.get("/docs")).text
    (bundle,) = [url for url in asset_links(swagger) if url.endswith("bundle.js")]
    raw = await client.get(bundle, headers={"Accept-Encoding": "identity"})
    zipped = await client.get(bundle, headers={"Accept-Encoding": "gzip, deflate, br"})
    assert "content-encoding" not in raw.headers
    assert zipped.headers["content-encoding"] == "gzip"
    size = int(zipped.headers["content-length"])
    assert size < len(raw.content) / 3  # 1.5 MB → about 0.4 MB
    assert zipped.content == raw.content  # httpx undid the gzip: the same script
    for answer in (raw, zipped):
        assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert answer.headers["vary"] == "Accept-Encoding"  # once
        assert "javascript" in answer.headers["content-type"]
    stale = bundle.replace(bundle.split("/")[3], "000000000000")
    assert (await client.get(stale)).status_code == 404  # an old URL never gets new content
    assert (await client.get("/static/docs/favicon.png")).status_code == 404


async def test_large_json_answers_are_gzipped_for_clients_that_take_it(client):
    schema = await client.get("/openapi.json", headers={"Accept-Encoding": "gzip"})
    assert schema.headers["content-encoding"] == "gzip"
    assert schema.json()["info"]["title"] == "Library Service"
    plain = await client.get("/openapi.json", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    small = await client.get("/health", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in small.headers  # not worth it under 1,400 bytes


async def test_the_favicon_is_served(client):
    icon = await client.get("/favicon.ico")
    assert icon.status_code == 200
    assert icon.headers["content-type"] == "image/png"
    assert icon.content.startswith(b"\x89PNG")


async def test_the_front_page_points_to_the_docs_and_the_admin(client):
    page = await client.get("/", headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert {"/docs", "/redoc", "/openapi.json", "/admin/"} <= set(
        asset_links_and_anchors(page.text)
    )
    api = await client.get("/", headers={"Accept": "application/json"})
    assert api.status_code == 200
    assert api.json() == {
        "name": "Library Service",
        "version": api.json()["version"],
        "docs": "/docs",
        "redoc": "/redoc",
        "openapi": "/openapi.json",
        "admin": "/admin/",
    }
    assert (await client.get("/", headers={"Accept": "*/*"})).json()["docs"] == "/docs"


def asset_links_and_anchors(html: str) -> list[str]:
    return re.findall(r'href="([^"]+)"', html)
