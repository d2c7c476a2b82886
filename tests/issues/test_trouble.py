"""The "what happened" core: failed transfers paired with the session moments within 30 minutes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from supportlens.issues.trouble import (
    CORRELATION_WINDOW,
    MAX_FAILURES,
    Failure,
    Moment,
    failures_from_dwolla,
    pair_up,
    summarize,
)

T0 = datetime(2026, 11, 18, 10, 42, tzinfo=UTC)
START = T0 - timedelta(minutes=5)


def failure(tid: str = "t1", at: datetime = T0, code: str | None = "R01", amount: str = "225.00") -> Failure:
    return Failure(
        tid, "cus1", "jane@acme.io", at, amount, "USD", code, "Insufficient Funds" if code else None
    )


def moment(kind: str, at: datetime, **kw: str) -> Moment:
    return Moment(
        session_id=kw.get("sid", "s1"),
        session_start=START,
        at=at,
        kind=kind,
        page_url=kw.get("url", "https://shop.example/pay?x=1"),
        selector=kw.get("selector", "button#pay-now"),
        message=kw.get("message"),
    )


def test_pair_up_keeps_the_30_minute_window_inclusive_on_both_sides() -> None:
    moments = [
        ("early-out", T0 - CORRELATION_WINDOW - timedelta(seconds=1)),
        ("early-in", T0 - CORRELATION_WINDOW),
        ("late-in", T0 + CORRELATION_WINDOW),
        ("late-out", T0 + CORRELATION_WINDOW + timedelta(seconds=1)),
    ]
    pairs = pair_up([("t", T0)], moments)
    assert [(m, d) for _, m, d in pairs] == [
        ("early-in", -CORRELATION_WINDOW),
        ("late-in", CORRELATION_WINDOW),
    ]


def test_summary_is_newest_failure_first_with_plain_words_and_seekable_moments() -> None:
    older = failure("old", T0 - timedelta(days=10), code="R03", amount="1310.5")
    newer = failure("new", T0)
    moments = [
        moment("error", T0 - timedelta(seconds=60), message="TypeError: undefined"),
        moment("rage_click", T0 - timedelta(minutes=4)),
        moment("dead_click", T0 + timedelta(hours=2)),  # too far from either
    ]
    s = summarize([older, newer], moments, journey_email={"cus1": "jane@acme.io"})
    assert s["status"] == "trouble"
    assert [f["transferId"] for f in s["failures"]] == ["new", "old"]
    new, old = s["failures"]
    assert (new["returnCode"], new["amount"]) == ("R01", "$225.00")
    assert new["meaning"].startswith("insufficient funds") and new["nextStep"]
    assert old["amount"] == "$1,310.50" and old["moments"] == []
    assert [m["kind"] for m in new["moments"]] == ["rage_click", "error"]  # in time order
    rage, err = new["moments"]
    assert (err["minutesApart"], err["when"]) == (1, "before")
    assert (rage["minutesApart"], rage["when"]) == (4, "before")
    offset = int((T0 - timedelta(seconds=60) - START).total_seconds() * 1000)
    assert err["offsetMs"] == offset and err["link"] == f"/sessions/s1?t={offset}"
    assert err["message"] == "TypeError: undefined" and err["page"] == "/pay"
    assert err["element"] == "button#pay-now" and err["label"] == "JavaScript error"
    assert err["journeyLink"] == "/customers/jane@acme.io/journey?from=2026-11-18&to=2026-11-18"


def test_nothing_failed_is_clear_and_the_glance_stays_short() -> None:
    assert summarize([], [moment("error", T0)]) == {
        "status": "clear",
        "failures": [],
        "severalCustomers": False,
    }
    many = [failure(f"t{i}", T0 - timedelta(days=i)) for i in range(MAX_FAILURES + 3)]
    assert [f["transferId"] for f in summarize(many, [])["failures"]] == [
        f"t{i}" for i in range(MAX_FAILURES)
    ]


def test_unknown_code_no_code_long_and_personal_strings() -> None:
    long_message = "TypeError: " + "x" * 5000
    s = summarize(
        [failure(code="R99"), failure("t2", T0 - timedelta(days=1), code=None)],
        [moment("error", T0, message=long_message, url="https://shop.example/pay?email=jane%40acme.io")],
        viewer=True,
    )
    unknown, no_code = s["failures"]
    assert unknown["returnCode"] == "R99" and unknown["meaning"] == "insufficient funds"
    assert no_code["returnCode"] is None and "no return code" in no_code["meaning"]
    [m] = unknown["moments"]
    assert len(m["message"]) <= 300 and m["message"].endswith("…")
    assert "jane" not in m["pageUrl"]  # viewers never see the customer's e-mail in a URL


def test_failures_are_read_from_the_dwolla_answer() -> None:
    items = [
        {
            "customer": {"id": "cus1", "email": "Jane@Acme.io"},
            "transfers": [
                {"id": "a", "status": "failed", "amount": "225.00", "currency": "USD",
                 "created": "2026-11-18T10:42:00Z", "failureCode": "R01",
                 "failureDescription": "Insufficient Funds"},
                {"id": "b", "status": "processed", "amount": "9.00", "created": "2026-11-17T10:00:00Z"},
                {"id": "c", "status": "failed", "amount": "1.00", "created": None},
            ],
        },
        {"customer": {"id": "cus2"}, "transfers": []},
    ]  # fmt: skip
    [f] = failures_from_dwolla(items)
    assert (f.transfer_id, f.customer_email, f.at, f.code) == ("a", "jane@acme.io", T0, "R01")


def test_several_customers_are_named() -> None:
    bob = Failure("t2", "cus2", "bob@x.io", T0, "5.00", "USD", "R03", None, customer_name="Bob Chen")
    one = summarize([failure()], [])
    two = summarize([failure(), bob], [])
    assert one["severalCustomers"] is False and two["severalCustomers"] is True
    assert [f["customerName"] for f in two["failures"]] == [None, "Bob Chen"]


def test_repeated_clicks_on_one_page_fold_into_the_first_errors_never() -> None:
    from supportlens.issues.trouble import _mark_repeats

    moments = [
        {"kind": "rage_click", "page": "/pay"},
        {"kind": "error", "page": "/pay"},
        {"kind": "rage_click", "page": "/pay"},
        {"kind": "error", "page": "/pay"},
        {"kind": "rage_click", "page": "/card"},
        {"kind": "dead_click", "page": "/pay"},
        {"kind": "rage_click", "page": "/pay"},
    ]
    out = _mark_repeats(moments)
    assert [m["repeat"] for m in out] == [False, False, True, False, False, False, True]
    assert [m["repeats"] for m in out] == [3, 1, 1, 1, 1, 1, 1]
