"""Fingerprinting rules: what must group together, what must stay apart."""

from __future__ import annotations

import string

from hypothesis import assume, given
from hypothesis import strategies as st

from supportlens.issues.fingerprint import (
    fingerprint_clicks,
    fingerprint_error,
    fingerprint_event,
    normalise_message,
    template_path,
    template_selector,
    top_frames,
)
from supportlens.masking import mask_pii_text

PAGE = "https://shop.example/pay"

ids = st.integers(min_value=0, max_value=10**12)
emails = st.emails()
uuids = st.uuids().map(str)
hexes = st.text("0123456789abcdef", min_size=8, max_size=40).filter(lambda h: any(c.isdigit() for c in h))
amounts = st.decimals(min_value=0, max_value=10**7, places=2).map(lambda d: f"${d:,}")
# A minifier's names: one to three characters.
minified = st.text(string.ascii_letters + "$_", min_size=1, max_size=3)
release_hash = st.text("0123456789abcdef", min_size=8, max_size=20).filter(
    lambda h: any(c.isdigit() for c in h)
)
line_col = st.tuples(st.integers(1, 99_999), st.integers(1, 999_999))

# Messages as real pages throw them, with slots for the values that differ between occurrences.
TEMPLATES = [
    "Error: Transfer {id} failed for {email}",
    "Error: Could not load order {id} ({uuid})",
    "Error: Payment of {amount} declined for customer {email}",
    "Uncaught Error: Request {hex} timed out after {id} ms",
    "Error: Invalid account '{id}-{hex}'",
    "Uncaught (in promise) Error: Funding source {uuid} was removed at {id}",
]
# Distinct defects: none of these may share a fingerprint with another.
DISTINCT = [
    "TypeError: Cannot read properties of undefined (reading 'amount')",
    "TypeError: Cannot read properties of undefined (reading 'status')",
    "TypeError: Cannot read properties of null (reading 'amount')",
    "ReferenceError: Stripe is not defined",
    "ReferenceError: Plaid is not defined",
    "TypeError: o.submit is not a function",
    "TypeError: o.reset is not a function",
    "Error: Payment declined",
    "Error: Payment cancelled",
    "Error: Transfer 8812 failed for jane@acme.io",
    "Error: Transfer 8812 failed",
    "SyntaxError: Unexpected token '<', \"<!DOCTYPE \"... is not valid JSON",
    "TypeError: Failed to fetch",
    "Script error.",
]


def v8_stack(message: str, release: str, names: list[str], lines: list[tuple[int, int]]) -> str:
    frames = [
        f"    at {names[0]} (https://shop.example/static/js/main.{release}.js:{lines[0][0]}:{lines[0][1]})",
        f"    at HTMLButtonElement.submitPayment (https://shop.example/static/js/main.{release}.js"
        f":{lines[1][0]}:{lines[1][1]})",
        f"    at {names[1]} (https://shop.example/static/js/vendor.{release}.js:{lines[2][0]}:{lines[2][1]})",
    ]
    return "\n".join([message, *frames])


def gecko_stack(release: str, names: list[str], lines: list[tuple[int, int]]) -> str:
    return "\n".join(
        [
            f"{names[0]}@https://shop.example/static/js/main.{release}.js:{lines[0][0]}:{lines[0][1]}",
            f"submitPayment@https://shop.example/static/js/main.{release}.js:{lines[1][0]}:{lines[1][1]}",
            f"{names[1]}@https://shop.example/static/js/vendor.{release}.js:{lines[2][0]}:{lines[2][1]}",
        ]
    )


@given(
    template=st.sampled_from(TEMPLATES),
    first=st.fixed_dictionaries({"id": ids, "email": emails, "uuid": uuids, "hex": hexes, "amount": amounts}),
    second=st.fixed_dictionaries(
        {"id": ids, "email": emails, "uuid": uuids, "hex": hexes, "amount": amounts}
    ),
    order_a=ids,
    order_b=ids,
)
def test_the_same_error_with_other_values_groups_together(template, first, second, order_a, order_b):
    a = fingerprint_error(template.format(**first), f"https://shop.example/orders/{order_a}")
    b = fingerprint_error(template.format(**second), f"https://shop.example/orders/{order_b}/?ref=x")
    assert a.key == b.key
    assert a.page == "/orders/:id"


@given(template=st.sampled_from(TEMPLATES), values=st.fixed_dictionaries(
    {"id": ids, "email": emails, "uuid": uuids, "hex": hexes, "amount": amounts}))  # fmt: skip
def test_ingest_masking_before_grouping_changes_nothing(template, values):
    """Ingest masks e-mails (and phone and card numbers) before storage: the template is the same."""
    message = template.format(**values)
    assert normalise_message(mask_pii_text(message)) == normalise_message(message)


@given(
    releases=st.tuples(release_hash, release_hash),
    names=st.tuples(st.lists(minified, min_size=2, max_size=2), st.lists(minified, min_size=2, max_size=2)),
    lines=st.tuples(st.lists(line_col, min_size=3, max_size=3), st.lists(line_col, min_size=3, max_size=3)),
)
def test_releases_minified_names_and_line_numbers_do_not_split_an_error(releases, names, lines):
    chrome_message = "TypeError: Cannot read properties of undefined (reading 'amount')"
    a = fingerprint_error(chrome_message, PAGE, v8_stack(chrome_message, releases[0], names[0], lines[0]))
    b = fingerprint_error(
        'TypeError: can\'t access property "amount", o is undefined',
        "https://shop.example/checkout",
        gecko_stack(releases[1], names[1], lines[1]),
    )
    c = fingerprint_error(
        "TypeError: undefined is not an object (evaluating 'e.amount')",
        PAGE,
        gecko_stack(releases[0], names[0], lines[1]),
    )
    assert a.key == b.key == c.key
    assert a.frames == ("main.js", "main.js:submitPayment")


@given(first=st.sampled_from(DISTINCT), second=st.sampled_from(DISTINCT))
def test_different_messages_do_not_group(first, second):
    assume(first != second)
    assert fingerprint_error(first, PAGE).key != fingerprint_error(second, PAGE).key


words = st.text(string.ascii_lowercase, min_size=3, max_size=12)


@given(first=words, second=words)
def test_different_words_keep_errors_apart(first, second):
    assume(first != second)
    a = fingerprint_error(f"Error: could not load the {first} widget", PAGE)
    b = fingerprint_error(f"Error: could not load the {second} widget", PAGE)
    assert a.key != b.key


@given(first=words, second=words)
def test_different_readable_functions_keep_errors_apart(first, second):
    assume(first != second)
    message = "TypeError: Cannot read properties of undefined (reading 'amount')"
    a = fingerprint_error(message, PAGE, f"{message}\n    at render{first} (https://s.example/app.js:1:2)")
    b = fingerprint_error(message, PAGE, f"{message}\n    at render{second} (https://s.example/app.js:1:2)")
    assert a.key != b.key


def test_without_a_stack_the_page_tells_errors_apart():
    assert (
        fingerprint_error("Error: boom", PAGE).key
        != fingerprint_error("Error: boom", "https://x.example/a").key
    )
    assert (
        fingerprint_error("Error: boom", PAGE).key
        == fingerprint_error("Uncaught Error: boom", PAGE + "?q=1").key
    )


def test_browser_wordings_of_one_failure():
    same = [
        "Uncaught TypeError: Cannot read properties of undefined (reading 'amount')",
        "TypeError: Cannot read property 'amount' of undefined",
        'TypeError: can\'t access property "amount", o is undefined',
        "TypeError: undefined is not an object (evaluating 'o.amount')",
        "TypeError: undefined is not an object (evaluating 'r.data[0].amount')",
    ]
    assert {normalise_message(m) for m in same} == {"TypeError: cannot read property 'amount' of undefined"}
    assert normalise_message("Can't find variable: Stripe") == normalise_message("Stripe is not defined")
    safari = "TypeError: t.a.submit is not a function. (In 't.a.submit()', 't.a.submit' is undefined)"
    assert normalise_message(safari) == normalise_message("TypeError: o.submit is not a function")
    json_errors = [
        "SyntaxError: Unexpected token < in JSON at position 0",
        "SyntaxError: JSON.parse: unexpected character at line 1 column 1 of the JSON data",
        "SyntaxError: JSON Parse error: Unrecognized token '<'",
    ]
    assert {normalise_message(m) for m in json_errors} == {"SyntaxError: invalid JSON"}
    fetches = ["TypeError: Failed to fetch", "TypeError: NetworkError when attempting to fetch resource.",
               "TypeError: Load failed"]  # fmt: skip
    assert {normalise_message(m) for m in fetches} == {"TypeError: network request failed"}


def test_placeholders():
    assert normalise_message(
        "Order 8812 for jane@acme.io: $1,204.50 via https://api.example/v1/x?id=3 ref 3f9a2c1b7d, "
        "id 0b6a7c1e-1111-4222-8333-944445555666, plan 'gold plan', field 'amount', tr_8f2k19"
    ) == (
        "Order <n> for <email>: <amount> via https://api.example/v1/x ref <n>, id <uuid>, "
        "plan '<str>', field 'amount', <id>"
    )


def test_dates_and_urls():
    assert normalise_message("Session expired at 2026-12-07T10:00:00.123Z (since 2026-12-06)") == (
        "Session expired at <date> (since <date>)"
    )
    assert normalise_message("GET https://api.shop.example/v1/orders/8812?expand=items failed") == (
        "GET https://api.shop.example/v1/orders/:id failed"
    )
    assert normalise_message("GET https://jane:pw@x.example/a failed") == "GET <url> failed"


def test_page_templates():
    assert template_path("https://shop.example/orders/8812/?x=1#top") == "/orders/:id"
    assert template_path("/customers/cus_8f2k19ab/edit") == "/customers/:token/edit"
    assert template_path("/a/0b6a7c1e-1111-4222-8333-944445555666") == "/a/:uuid"
    assert template_path("/p/3f9a2c1b7d4e") == "/p/:hash"
    assert template_path("/u/jane@acme.io") == template_path("/u/[email]") == "/u/:email"
    assert template_path("/Pay") == template_path("https://other.example/pay/") == "/pay"
    assert template_path(None) == "/"


def test_frames_skip_vendors_extensions_and_native_code():
    stack = "\n".join(
        [
            "forEach@[native code]",
            "e@chrome-extension://abcdef/inject.js:1:1",
            "t@https://shop.example/static/js/vendor.77aa01ff.js:2:100",
            "loadCart@https://shop.example/static/js/cart-3f9a2c1b.chunk.js:1:5",
            "loadCart@https://shop.example/static/js/cart-3f9a2c1b.chunk.js:1:9",
            "Xe@https://shop.example/static/js/main.77aa01ff.min.js:1:11111",
            "a@https://shop.example/static/js/main.77aa01ff.min.js:1:11",
            "b@https://shop.example/static/js/main.77aa01ff.min.js:1:12",
        ]
    )
    assert top_frames(stack) == ("cart.chunk.js:loadCart", "main.js")
    only_vendor = "t@https://cdn.example/node_modules/lib/index.js:1:1"
    assert top_frames(only_vendor) == ("index.js",)
    assert top_frames("TypeError: x\n    at <anonymous>") == ()


def test_clicks_group_by_page_and_element():
    a = fingerprint_clicks(
        "rage_click", "https://s.example/orders/1", "div.row:nth-of-type(2) > button#pay-1"
    )
    b = fingerprint_clicks(
        "rage_click", "https://s.example/orders/22", "div.row:nth-of-type(7) > button#pay-22"
    )
    dead = fingerprint_clicks("dead_click", "https://s.example/orders/1", "div.row > button#pay-1")
    other = fingerprint_clicks("rage_click", "https://s.example/orders/1", "div.row > button#cancel")
    assert a.key == b.key and len({a.key, dead.key, other.key}) == 3
    assert a.title == "Rage clicks on div.row > button#pay-:n at /orders/:id"
    assert template_selector("a.Button_primary__3xYz1.css-1x2y3z") == "a.button_primary"


def test_event_types():
    assert fingerprint_event("click", {}, PAGE, "button") is None
    err = fingerprint_event("error", {"message": "Error: boom", "stack": 7}, PAGE, None)
    assert err is not None and err.kind == "error" and err.frames == ()
    assert fingerprint_event("dead_click", None, PAGE, "button#pay") is not None


@given(message=st.text(max_size=5000), url=st.text(max_size=3000), stack=st.text(max_size=5000))
def test_hostile_input_never_raises(message, url, stack):
    fp = fingerprint_error(message, url, stack)
    assert len(fp.key) == 64 and len(fp.title) <= 200


@given(st.sampled_from(["Jane", "Omar", "Li", "Maria"]), st.sampled_from(["Ken", "Ada", "Priya", "Tom"]))
def test_a_persons_name_in_a_message_does_not_split_an_error(first, second):
    a = normalise_message(f"Error: Could not load the avatar of {first}")
    b = normalise_message(f"Error: Could not load the avatar of {second}")
    assert a == b == "Error: Could not load the avatar of <name>"
    # Code names stay: camelCase, ALL CAPS, a member access, the first word of the sentence.
    assert normalise_message("Error: could not parse JSON from fetchOrders") == (
        "Error: could not parse JSON from fetchOrders"
    )
    assert normalise_message("Error: Stripe failed to load") == "Error: Stripe failed to load"
    assert normalise_message("Error: the Payments.load call failed") == "Error: the Payments.load call failed"


def test_without_a_stack_the_script_that_threw_locates_the_error_on_every_page():
    msg = "TypeError: Cannot read properties of undefined (reading 'amount')"
    on_pay = fingerprint_error(msg, PAGE, source="https://shop.example/static/js/main.3f9a2c1b.js")
    on_orders = fingerprint_error(
        msg, "https://shop.example/orders/12", source="https://shop.example/static/js/main.77aa01ce.js"
    )
    other_script = fingerprint_error(msg, PAGE, source="https://shop.example/static/js/checkout.3f9a2c1b.js")
    assert on_pay.key == on_orders.key
    assert on_pay.key != other_script.key
    # Stored events carry it as `source` (window.onerror's filename).
    data = {"message": msg, "source": "https://shop.example/static/js/main.1b2c3d4e.js"}
    stored = fingerprint_event("error", data, PAGE, None)
    assert stored is not None and stored.key == on_pay.key
    # No script named (a rejected promise, "Script error."): the page again.
    assert fingerprint_error(msg, PAGE, source="").key != fingerprint_error(msg, "https://shop.example/x").key
