"""The JSON API's documentation pages, `/schema` (Swagger UI) and `/schema/redoc` (Redoc),
drawn from files Jalon serves itself: they work on a network with no internet access, and
under the same Content-Security-Policy as every other page (no inline script, no inline
style; Redoc's generated styles carry the response's nonce).

The viewers' files come from a PyPI package, `drf-spectacular-sidecar`, which ships
Swagger UI's and Redoc's distribution builds (see docs/adr/0026-api-docs-offline.md). Only its
files are read: nothing of it (nor of Django, its declared dependency) is imported.
"""

from __future__ import annotations

import html
import importlib.util
import logging
import secrets
from functools import cache
from pathlib import Path, PurePath
from typing import Any

from litestar import Request, Response, Router, get
from litestar.exceptions import NotFoundException
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.static_files import create_static_files_router

from web.headers import PAGE_POLICY

logger = logging.getLogger(__name__)

#: Where the viewers' files are served from.
ASSETS_PATH = "/static/docs"
_PACKAGE = "drf_spectacular_sidecar"


def package_static() -> Path:
    """The viewers' folder in the installed package (found, not imported)."""
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"{_PACKAGE} is not installed: the API documentation needs it")
    return Path(next(iter(spec.submodule_search_locations))) / "static" / _PACKAGE


#: What Redoc's bundle is served with, changed so that it keeps to the page's policy and to
#: the machine: its style elements made at load (before `Redoc.init` gives the nonce) get the
#: nonce of the script element that loads the bundle, and the Redocly logo of the menu's
#: footer, fetched from Redocly's CDN, is an empty image (which Redoc then hides). A
#: replacement that no longer matches (another Redoc) leaves the bundle as it is: the
#: browser test then reports the policy violation or the request that left.
_REDOC_PATCHES = (
    ("r.nc=void 0;", "r.nc=(document.currentScript||{}).nonce||void 0;"),
    ("https://cdn.redoc.ly/redoc/logo-mini.svg", "data:,"),
)


@cache
def _redoc_bundle() -> bytes:
    text = (package_static() / "redoc" / "bundles" / "redoc.standalone.js").read_text("utf-8")
    for old, new in _REDOC_PATCHES:
        if text.count(old) == 1:
            text = text.replace(old, new)
        else:
            logger.warning("redoc bundle: %r not found once, left as it is", old)
    return text.encode()


@get(f"{ASSETS_PATH}/redoc.standalone.js", include_in_schema=False, sync_to_thread=False)
def redoc_bundle() -> Response[bytes]:
    """Redoc's bundle, as `_REDOC_PATCHES` serves it."""
    return Response(_redoc_bundle(), media_type="text/javascript; charset=utf-8")


#: The files the two pages load from `ASSETS_PATH`, besides Redoc's bundle: ours
#: (`web/static/docs/`) and Swagger UI's (the package's `swagger-ui-dist/`). Nothing else of
#: the package is served: not Swagger UI's OAuth2 redirect page (the API takes tokens, not
#: OAuth2), nor the source maps, licences, favicon and standalone preset it also ships.
ASSETS = frozenset(
    {
        "api-docs.css",
        "swagger-init.js",
        "redoc-init.js",
        "swagger-ui.css",
        "swagger-ui-bundle.js",
    }
)


def _only_the_pages_assets(request: Request[Any, Any, Any]) -> None:
    """A 404 for a file of the folders that is not in `ASSETS`."""
    if PurePath(request.path_params["file_path"]).as_posix().lstrip("/") not in ASSETS:
        raise NotFoundException()


def assets_handlers() -> list[Router | HTTPRouteHandler]:
    """`/static/docs/…`: the `ASSETS` of Swagger UI and of the page scripts that start the
    viewers (`web/static/docs/`), served like the other static files, and Redoc's bundle."""
    here = Path(__file__).resolve().parents[1] / "web" / "static" / "docs"
    files = create_static_files_router(
        path=ASSETS_PATH,
        directories=[here, package_static() / "swagger-ui-dist"],
        before_request=_only_the_pages_assets,
        include_in_schema=False,
    )
    return [files, redoc_bundle]


def _page(title: str, head: str, body: str) -> bytes:
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
{head}
</head>
<body>
{body}
</body>
</html>
""".encode()


class SwaggerPage(OpenAPIRenderPlugin):
    """Swagger UI at `/schema/swagger` (and `/schema`): try the API with a token."""

    def __init__(self, path: str = "/swagger") -> None:
        super().__init__(path=path)

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        spec_url = html.escape(self.get_openapi_json_route(request))
        return _page(
            str(openapi_schema["info"]["title"]),
            f'<link rel="stylesheet" href="{ASSETS_PATH}/swagger-ui.css">\n'
            f'<link rel="stylesheet" href="{ASSETS_PATH}/api-docs.css">',
            f'<div id="swagger-ui" data-spec-url="{spec_url}"></div>\n'
            f'<script src="{ASSETS_PATH}/swagger-ui-bundle.js"></script>\n'
            f'<script src="{ASSETS_PATH}/swagger-init.js"></script>',
        )

    def receive_router(self, router: Router) -> None:
        """No OAuth2 redirect page: the API authenticates with tokens, not OAuth2."""


class RedocPage(OpenAPIRenderPlugin):
    """Redoc at `/schema/redoc`: the reference to read."""

    def __init__(self, path: str = "/redoc") -> None:
        super().__init__(path=path)

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        # Redoc writes its styles into <style> elements: they carry this nonce, which the
        # page's policy allows for styles (scripts stay files of ours only, the nonce on
        # them is where Redoc reads it from).
        # Its search runs in a worker that it makes from a blob of its own.
        nonce = secrets.token_urlsafe(16)
        request.state[PAGE_POLICY] = {
            "style-src": f"'self' 'nonce-{nonce}'",
            "worker-src": "'self' blob:",
        }
        spec_url = html.escape(self.get_openapi_json_route(request))
        return _page(
            str(openapi_schema["info"]["title"]),
            f'<link rel="stylesheet" href="{ASSETS_PATH}/api-docs.css">',
            f'<div id="redoc" data-spec-url="{spec_url}"></div>\n'
            f'<script src="{ASSETS_PATH}/redoc.standalone.js" nonce="{nonce}"></script>\n'
            f'<script src="{ASSETS_PATH}/redoc-init.js" nonce="{nonce}"></script>',
        )
