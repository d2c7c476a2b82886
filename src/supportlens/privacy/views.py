"""Erasure of a customer: `DELETE /api/customers/{email}` and the admin confirmation flow."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse

from supportlens.auth.deps import AdminPrincipal, DbDep, SettingsDep
from supportlens.customers.emails import canonical_email_or_none
from supportlens.deps import DirectoryDep
from supportlens.privacy import (
    erasure,
    retention,  # noqa: F401  (registers the daily retention job)
)
from supportlens.problems import ProblemError
from supportlens.web.pages import render

router = APIRouter(tags=["privacy"])


@router.delete("/api/customers/{email}", summary="Erase a customer")
async def erase_customer_api(
    email: str,
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    directory: DirectoryDep,
    principal: AdminPrincipal,
) -> dict[str, Any]:
    """Delete everything SupportLens holds about the customer; answers with a receipt of what was deleted
    and the steps left to do by hand in Clarity, HubSpot and Dwolla. Administrators only."""
    try:
        receipt = await erasure.erase_customer(
            db, email, settings, actor=principal.agent, request=request, directory=directory
        )
    except erasure.ErasureError as exc:
        raise ProblemError(400, "Invalid e-mail", str(exc), field="email") from None
    return receipt.as_json()


@router.get("/admin/erasure", response_class=HTMLResponse, include_in_schema=False)
async def erasure_form(request: Request, principal: AdminPrincipal) -> HTMLResponse:
    return render(request, "privacy/erasure.html", {"step": "ask", "email": "", "error": None})


@router.post("/admin/erasure/preview", response_class=HTMLResponse, include_in_schema=False)
async def erasure_preview(
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    principal: AdminPrincipal,
    email: Annotated[str, Form(max_length=254)] = "",
) -> HTMLResponse:
    try:
        normalized = erasure.normalize(email)
        counts = await erasure.preview(db, normalized, settings)
    except erasure.ErasureError as exc:
        return _ask_again(request, email, exc)
    return render(request, "privacy/erasure.html", {"step": "confirm", "email": normalized, "counts": counts})


@router.post("/admin/erasure", response_class=HTMLResponse, include_in_schema=False)
async def erasure_confirm(
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    directory: DirectoryDep,
    principal: AdminPrincipal,
    email: Annotated[str, Form(max_length=254)] = "",
    confirm_email: Annotated[str, Form(max_length=254)] = "",
) -> HTMLResponse:
    """The admin typed the e-mail a second time: erase and show the receipt."""
    try:
        normalized = erasure.normalize(email)
    except erasure.ErasureError as exc:
        return _ask_again(request, email, exc)
    if canonical_email_or_none(confirm_email) != normalized:
        counts = await erasure.preview(db, normalized, settings)
        return render(
            request,
            "privacy/erasure.html",
            {
                "step": "confirm",
                "email": normalized,
                "counts": counts,
                "error": "The e-mail you typed to confirm does not match. Nothing was deleted.",
            },
            status_code=400,
        )
    receipt = await erasure.erase_customer(
        db, normalized, settings, actor=principal.agent, request=request, directory=directory
    )
    page = render(
        request,
        "privacy/erasure.html",
        {
            "step": "done",
            "receipt": receipt,
            "receipt_json": json.dumps(receipt.as_json(), indent=2),
            "email": "",
        },
    )
    # The receipt (with the customer's Clarity ids) is shown and downloadable once: not stored by us,
    # and not kept by the browser's cache either.
    page.headers["Cache-Control"] = "no-store"
    return page


def _ask_again(request: Request, email: str, error: erasure.ErasureError) -> HTMLResponse:
    """The first step again, saying why the e-mail was not taken."""
    return render(
        request, "privacy/erasure.html", {"step": "ask", "email": email, "error": str(error)}, status_code=400
    )
