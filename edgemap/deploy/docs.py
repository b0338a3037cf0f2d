"""OpenAPI documentation at /docs that works on a device without internet.

FastAPI's own /docs page loads Swagger UI's JavaScript and CSS from a CDN, so it is blank offline. Here
the page points at copies served by the server itself, from the `fastapi-swagger` package (Swagger UI 5,
which renders OpenAPI 3.1; pinned in requirements/edge.txt). The files are read once, on first use, and
sent with a long cache lifetime. Without the package, /docs says how to get it (the API description is
still at /openapi.json).
"""

# no `from __future__ import annotations`: FastAPI must see the real types of the routes' local imports

from functools import lru_cache

ASSETS_PREFIX = "/docs/assets/"
ASSETS = {  # URL name -> (file in fastapi_swagger.resources, media type)
    "swagger-ui-bundle.js": ("swagger-ui-bundle.js", "application/javascript"),
    "swagger-ui.css": ("swagger-ui.css", "text/css"),
    "favicon.png": ("favicon-32x32.png", "image/png"),
}
ASSET_PATHS = frozenset(ASSETS_PREFIX + name for name in ASSETS)  # public files: open even with a token
MISSING = ("Swagger UI's files are not installed on this device (pip install fastapi-swagger, as in "
           "requirements/edge.txt); the API description is at /openapi.json")


@lru_cache(maxsize=None)
def asset(name: str) -> bytes | None:
    """The bytes of one Swagger UI file, or None when fastapi-swagger is not installed."""
    from importlib import resources

    try:
        return resources.files("fastapi_swagger.resources").joinpath(ASSETS[name][0]).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError):
        return None


def add_offline_docs(app) -> None:  # noqa: ANN001 - fastapi.FastAPI created with docs_url=None, redoc_url=None
    """GET /docs (Swagger UI with local assets) and GET /docs/assets/{name}."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import PlainTextResponse, Response

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> Response:
        if asset("swagger-ui-bundle.js") is None:
            return PlainTextResponse(MISSING, status_code=503)
        return get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{app.title} - API",
                                   swagger_js_url=ASSETS_PREFIX + "swagger-ui-bundle.js",
                                   swagger_css_url=ASSETS_PREFIX + "swagger-ui.css",
                                   swagger_favicon_url=ASSETS_PREFIX + "favicon.png",
                                   swagger_ui_parameters={"validatorUrl": None})  # no call to an online validator

    for name, (_, media_type) in ASSETS.items():
        _add_asset_route(app, name, media_type)


def _add_asset_route(app, name: str, media_type: str) -> None:  # noqa: ANN001 - fastapi.FastAPI
    from fastapi.responses import PlainTextResponse, Response

    @app.get(ASSETS_PREFIX + name, include_in_schema=False, name=f"docs_asset_{name}")
    def send_asset() -> Response:
        data = asset(name)
        if data is None:
            return PlainTextResponse(MISSING, status_code=404)
        return Response(data, media_type=media_type, headers={"Cache-Control": "public, max-age=86400"})
