"""`install(app)`: the case console's routes and assets, and the API docs served without a CDN."""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from service.console import dispatch, kpi_page, pages, signin
from service.console.web import HERE, PREFIX, make_templates

#: Swagger UI and ReDoc as the fastapi-offline package ships them (their licences: Apache-2.0 and MIT).
_DOCS_ASSETS = Path(fastapi_offline.__file__).resolve().parent / "static"
DOCS_STATIC = "/docs-static"


def install(app: FastAPI) -> None:
    """Add the console under /console (and / leading to it), its static files, and offline /docs and /redoc.

    The app must be built with `docs_url=None, redoc_url=None`.
    """
    app.state.console_templates = make_templates()
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="console-static")
    app.mount(DOCS_STATIC, StaticFiles(directory=_DOCS_ASSETS), name="docs-static")
    app.include_router(signin.router)
    app.include_router(pages.router)
    app.include_router(dispatch.router)
    app.include_router(kpi_page.router)
    title = app.title

    @app.get("/", include_in_schema=False)
    def _home() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/", 303)

    @app.get("/docs", include_in_schema=False)
    def _swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{title} - Swagger UI",
            swagger_js_url=f"{DOCS_STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_STATIC}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},  # the validator badge would call swagger.io
        )

    @app.get("/redoc", include_in_schema=False)
    def _redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title=f"{title} - ReDoc",
            redoc_js_url=f"{DOCS_STATIC}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_STATIC}/favicon.png",
            with_google_fonts=False,
        )
