"""The demo shop: sign-in, browse, product pages and a payment page with a broken button and a throwing one.

Every page loads the real clarity-js bundle (served from this origin, started with a local upload path
that answers 204) and supportlens.js from the SupportLens origin with the demo site key. Signed-in
pages call SupportLens.identify(...). Demo customers come from the demo world; one shared password.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import httpx2
from fastapi import FastAPI, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from itsdangerous import BadSignature, URLSafeSerializer
from starlette.background import BackgroundTask

from supportlens.web.pages import STATIC_DIR

HERE = Path(__file__).parent
CLARITY_JS = STATIC_DIR / "vendor" / "clarity.min.js"  # fetched from npm by `make setup`
DEMO_PASSWORD = "shop-demo"  # noqa: S105 - the demo shop's one shared password, printed by `supportlens demo`
COOKIE = "shop_customer"


MAX_UPLOAD_BYTES = 1_000_000
log = logging.getLogger(__name__)


async def forward_to_clarity(body: bytes) -> None:
    """Give one tracker upload to the Clarity simulator: in-process when the demo runs it here,
    else over HTTP to SUPPORTLENS_DEMO_CLARITY_UPLOAD_URL. Never raises (the tracker got its 204)."""
    try:
        from supportlens_sandbox import clarity_demo

        if clarity_demo.DEMO_STATE is not None:
            clarity_demo.forward_upload(body)
            return
        url = os.environ.get("SUPPORTLENS_DEMO_CLARITY_UPLOAD_URL")
        if url:
            async with httpx2.AsyncClient(timeout=2.0) as client:
                await client.post(url, content=body, headers={"Content-Type": "text/plain"})
    except Exception:  # best effort: the demo shop never fails because the simulator did
        log.debug("clarity upload not forwarded", exc_info=True)


@dataclass(frozen=True)
class Product:
    slug: str
    name: str
    price: str
    blurb: str


PRODUCTS = (
    Product("payroll-basic", "Payroll Basic", "$29 / month", "Run payroll for up to 10 people."),
    Product("payroll-plus", "Payroll Plus", "$79 / month", "Payroll, benefits and tax filings."),
    Product("invoicing", "Invoicing", "$15 / month", "Send invoices and get paid by ACH."),
    Product("card-reader", "Card reader", "$49", "Take in-person payments."),
)


@dataclass(frozen=True)
class ShopCustomer:
    email: str
    id: str
    name: str


def _customers() -> dict[str, ShopCustomer]:
    from supportlens_sandbox.world import demo_world

    out: dict[str, ShopCustomer] = {}
    for c in demo_world().customers:
        cid = c.dwolla_id or c.hubspot_contact_id or c.email
        out[c.email.lower()] = ShopCustomer(
            c.email.lower(), f"cus_{cid}"[:64], f"{c.first_name} {c.last_name}"
        )
    return out


def create_shop_app(
    *,
    supportlens_url: str,
    site_key: str,
    clarity_project: str,
    secret: str = "demo-shop-secret",  # noqa: S107
) -> FastAPI:
    app = FastAPI(title="Demo shop", docs_url=None, redoc_url=None, openapi_url=None)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    signer = URLSafeSerializer(secret, salt="shop-customer")
    customers = _customers()
    app.mount("/static/shop", StaticFiles(directory=str(HERE / "static")), name="shop-static")

    def current(request: Request) -> ShopCustomer | None:
        raw = request.cookies.get(COOKIE)
        if not raw:
            return None
        try:
            email = signer.loads(raw)
        except BadSignature:
            return None
        return customers.get(str(email))

    def page(request: Request, name: str, status_code: int = 200, **ctx: object) -> HTMLResponse:
        base: dict[str, object] = {
            "customer": current(request),
            "supportlens_url": supportlens_url.rstrip("/"),
            "site_key": site_key,
            "clarity_project": clarity_project,
            "products": PRODUCTS,
        }
        base.update(ctx)
        return templates.TemplateResponse(request, name, base, status_code=status_code)

    @app.get("/static/vendor/clarity.min.js", include_in_schema=False)
    async def clarity_js() -> FileResponse:
        return FileResponse(CLARITY_JS, media_type="application/javascript")

    @app.post("/collect", include_in_schema=False)
    async def collect(request: Request) -> Response:
        # The tracker's uploads: always acknowledged (a 4xx would end its session) and, best effort,
        # handed to the Clarity simulator so its recordings list shows the sessions really recorded.
        body = bytearray()
        async for chunk in request.stream():
            if len(body) <= MAX_UPLOAD_BYTES:
                body += chunk
        if not body or len(body) > MAX_UPLOAD_BYTES:
            return Response(status_code=204)
        return Response(status_code=204, background=BackgroundTask(forward_to_clarity, bytes(body)))

    @app.get("/", response_class=HTMLResponse)
    async def home(request: Request) -> HTMLResponse:
        return page(request, "home.html")

    @app.get("/products/{slug}", response_class=HTMLResponse)
    async def product(request: Request, slug: str) -> HTMLResponse:
        item = next((p for p in PRODUCTS if p.slug == slug), None)
        if item is None:
            return page(request, "home.html", status_code=404)
        return page(request, "product.html", product=item)

    @app.get("/pay", response_class=HTMLResponse)
    async def pay(request: Request, product: str = "payroll-basic") -> HTMLResponse:
        item = next((p for p in PRODUCTS if p.slug == product), PRODUCTS[0])
        return page(request, "pay.html", product=item)

    @app.get("/signin", response_class=HTMLResponse)
    async def signin_form(request: Request) -> HTMLResponse:
        return page(request, "signin.html", error=None, email="")

    @app.post("/signin", response_model=None)
    async def signin(
        request: Request,
        email: Annotated[str, Form(max_length=254)] = "",
        password: Annotated[str, Form(max_length=200)] = "",
    ) -> Response:
        who = customers.get(email.strip().lower())
        if who is None or password != DEMO_PASSWORD:
            return page(
                request, "signin.html", status_code=401, error="Wrong e-mail or password.", email=email
            )
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(COOKIE, signer.dumps(who.email), httponly=True, samesite="lax")
        return response

    @app.post("/signout")
    async def signout() -> Response:
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    return app
