"""Fingerprints: which error events and click clusters are the same problem.

Model. A fingerprint is the SHA-256 of a few normalised parts; two signals are the same issue
exactly when every part is equal. The parts are chosen to keep what identifies a defect in the
page's code and to drop what varies between occurrences, customers, browsers and releases:

    error       kind · message template · top in-app frames      (when the page sent a stack)
                kind · message template · page template          (no usable stack)
    rage_click  kind · page template · element (selector template)
    dead_click  kind · page template · element (selector template)

Rules, following how Sentry groups (stack first, message as the fallback; only in-app frames;
file names cleaned of revision hashes; JavaScript function names trimmed to their last member;
Safari's `[native code]` frames dropped; message parameters replaced by typed placeholders).
Sentry relies on source maps to undo minification; a page here sends none, so this goes one step
further and drops minified function names and line numbers altogether:

1. Message. The engine's prefix (`Uncaught`, `Uncaught (in promise)`) goes. Known engine
   wordings of one failure are rewritten to one canonical sentence (`_CANONICAL`): V8's
   `Cannot read properties of undefined (reading 'amount')`, SpiderMonkey's
   `can't access property "amount", o is undefined` and JavaScriptCore's
   `undefined is not an object (evaluating 'o.amount')` all become
   `TypeError: cannot read property 'amount' of undefined` (the property is the last member
   read; the minified receiver `o` goes). The property stays in the key because the same bundle
   file often holds several such defects and minified frames cannot tell them apart. Firefox
   before 72 (2020) said only `o is undefined`: that wording becomes `cannot read a property of
   undefined` and groups apart from the others, a known recall loss on such old browsers.
   Likewise `Can't find variable: x` = `x is not defined`; `o.submit is not a function` keeps
   `submit`; the JSON-parse and failed-fetch wordings of the three engines are unified. Then,
   in this order: a URL keeps only its host and templated path (which endpoint failed:
   `https://api.x/v1/orders/:id`); e-mails (and ingest's `[email]`/`[phone]`/`[card]` masks),
   UUIDs, ISO dates and times, hex strings, amounts, quoted values that are not identifiers,
   id-like tokens (`tr_8f2k19`) and numbers become `<email>`, `<uuid>`, `<date>`, `<n>`,
   `<amount>`, `<str>`, `<id>` and `<n>` (hex strings and numbers share `<n>`: one in 40 random
   8-digit hex ids has no letter). Quoted identifiers (`'amount'`) stay: they name code. Last, a
   capitalised word after a lowercase one (`the avatar of Jane`) becomes `<name>`: a person's
   name is data (and personal), while code names are camelCase, quoted or in capitals.
2. Page. Only the path; a segment that is a number, a UUID, a hash, an e-mail, a masked value or
   an id-like token (digits among letters, `cus_8812ab`) becomes `:id`, `:uuid`, `:hash`,
   `:email` or `:token`. `/orders/8812/` -> `/orders/:id`.
3. Frames. V8 (`at fn (url:line:col)`) and SpiderMonkey/JavaScriptCore (`fn@url:line:col`)
   lines are parsed; line and column numbers are dropped; the file keeps only its base name
   without release hashes or build numbers (`main.3f9a2c1b.js` -> `main.js`); a function name
   is kept only when it is readable (longer than three characters, not a minifier's `o`, `Xe`,
   `$t`), since minified names change with every release. Frames from extensions, `native`
   code, `node_modules` and vendor bundles are not in-app and are skipped unless nothing else
   is left. Consecutive equal frames collapse, and the top three remain.
4. Element. `:nth-child(3)`/`:nth-of-type(3)` go; digits inside ids and classes become `:n`;
   CSS-module and CSS-in-JS hashes (`Button_primary__3xYz1`, `css-1x2y3z`) go.

Everything here is pure: no database, no clock; the inputs are attacker-controlled text and
are bounded before any regular expression runs.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal
from urllib.parse import urlsplit

from supportlens.masking import mask_pii_text

IssueKind = Literal["error", "rage_click", "dead_click"]
KINDS: tuple[IssueKind, ...] = ("error", "rage_click", "dead_click")

MAX_MESSAGE = 500
MAX_STACK = 2000
MAX_URL = 2048
MAX_SELECTOR = 512
TOP_FRAMES = 3
TITLE_MAX = 200


@dataclass(frozen=True)
class Fingerprint:
    """What grouping needs: the key, the kind, and readable parts for the issue's title."""

    key: str  # SHA-256 hex of the parts
    kind: IssueKind
    message: str  # the message template (errors) or "" (clicks)
    page: str  # the page template
    frames: tuple[str, ...]  # "file:function" or "file" (errors with a stack)
    element: str  # the selector template (clicks)

    @property
    def title(self) -> str:
        if self.kind == "error":
            return self.message[:TITLE_MAX] or "Error"
        label = "Rage clicks" if self.kind == "rage_click" else "Dead clicks"
        return f"{label} on {self.element or 'the page'} at {self.page}"[:TITLE_MAX]


# ---- messages -------------------------------------------------------------------------------

_ENGINE_PREFIX = re.compile(r"^\s*(?:uncaught\s*(?:\(in promise\)\s*)?)", re.IGNORECASE)
_ERROR_TYPE = re.compile(r"^([A-Z][A-Za-z]*(?:Error|Exception)|Error)\s*:\s*")

# One failure, several wordings: (pattern, canonical sentence, error type when the browser omits it).
# Named groups fill the sentence: `nullish` (undefined | null), `prop` (the property read), `name`.
_READ = "cannot read property '{prop}' of {nullish}"
_CANONICAL: tuple[tuple[re.Pattern[str], str, str], ...] = (
    # V8 (Chrome >= 91, Edge, Node): Cannot read properties of undefined (reading 'amount')
    (
        re.compile(
            r"^cannot read properties of (?P<nullish>undefined|null) \(reading '(?P<prop>[^']{0,80})'\)", re.I
        ),
        _READ,
        "TypeError",
    ),
    # V8 before 91: Cannot read property 'amount' of undefined
    (
        re.compile(r"^cannot read property '(?P<prop>[^']{0,80})' of (?P<nullish>undefined|null)", re.I),
        _READ,
        "TypeError",
    ),
    # SpiderMonkey (Firefox >= 72): can't access property "amount", o is undefined
    (
        re.compile(
            r"^can't access property \"(?P<prop>[^\"]{0,80})\", .{0,120} is (?P<nullish>undefined|null)$",
            re.I,
        ),
        _READ,
        "TypeError",
    ),
    # JavaScriptCore (Safari): undefined is not an object (evaluating 'o.amount'): the last member read
    (
        re.compile(
            r"^(?P<nullish>undefined|null) is not an object \(evaluating '(?:[^']{0,200}[.\[])?"
            r"(?P<prop>[^.\[\]']{1,80})\]?'\)",
            re.I,
        ),
        _READ,
        "TypeError",
    ),
    # SpiderMonkey before 72 does not say which property: o is undefined / o.items is null
    (
        re.compile(r"^[\w$.\[\]'\"]{1,80} is (?P<nullish>undefined|null)$", re.I),
        "cannot read a property of {nullish}",
        "TypeError",
    ),
    # JavaScriptCore: Can't find variable: foo   ==   V8/SpiderMonkey: foo is not defined
    (re.compile(r"^can't find variable: (?P<name>[\w$]+)", re.I), "{name} is not defined", "ReferenceError"),
    (re.compile(r"^(?P<name>[\w$]+) is not defined$"), "{name} is not defined", "ReferenceError"),
    # not a function: keep only the last property name (the receiver is often minified)
    (
        re.compile(r"^(?:[\w$]+\.)*(?P<name>[\w$]+)(?:\(\.\.\.\))? is not a function\b", re.I),
        "{name} is not a function",
        "TypeError",
    ),
    # JSON: V8 `Unexpected token < in JSON at position 0` / `... is not valid JSON`,
    # SpiderMonkey `JSON.parse: unexpected character ...`, JavaScriptCore `JSON Parse error: ...`
    (
        re.compile(r"^(?:unexpected token\b.*\bjson\b|.*is not valid json)", re.I),
        "invalid JSON",
        "SyntaxError",
    ),
    (re.compile(r"^json(?:\.parse:| parse error:)", re.I), "invalid JSON", "SyntaxError"),
    # fetch(): V8 `Failed to fetch`, SpiderMonkey `NetworkError when attempting to fetch resource.`,
    # JavaScriptCore `Load failed`
    (
        re.compile(
            r"^(?:failed to fetch|networkerror when attempting to fetch resource|load failed)\b", re.I
        ),
        "network request failed",
        "TypeError",
    ),
)

_URL = re.compile(r"\b[a-z][a-z0-9+.\-]{1,15}://[^\s'\"<>()]+", re.I)
_EMAIL = re.compile(r"[^\s@'\"<>()]{1,64}@[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63})+")
_EMAIL_TOKEN = re.compile(r"[^\s\[]*\[email\]")
_MASKED = re.compile(r"\[(?:email|phone|card)\]|\*{2,}[\w.@-]*")
_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I)
_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?\b")
_HEX = re.compile(r"\b(?:0x[0-9a-f]+|(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,})\b", re.I)
_AMOUNT = re.compile(
    r"(?:[$€£¥]\s?|\b(?:USD|EUR|GBP)\s?)-?\d[\d,]*(?:\.\d+)?|\b-?\d[\d,]*(?:\.\d+)?\s?(?:USD|EUR|GBP)\b"
)
_QUOTED = re.compile(r"'([^'\n]{0,200})'|\"([^\"\n]{0,200})\"|`([^`\n]{0,200})`")
_IDENTIFIER = re.compile(r"^[A-Za-z_$][\w$]{0,39}$")
_TOKEN = re.compile(
    r"\b(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[A-Za-z0-9]+(?:[_-][A-Za-z0-9]+)+\b|\b[a-z]+_\w*\d\w*\b", re.I
)
_NUMBER = re.compile(r"(?<![\w<])-?\d+(?:[.,]\d+)*(?![\w>])")
# A capitalised word after a lowercase one, mid-sentence: a person's or a place's name in an app's own
# message ("could not load the avatar of Jane"). Code names are camelCase, quoted or ALL CAPS and stay.
_NAME = re.compile(r"(\b[a-z]{2,} )[A-Z][a-z]{1,30}\b(?![\w$.(\[])")
_SPACES = re.compile(r"\s+")


def _url_template(match: re.Match[str]) -> str:
    """A URL keeps its host and templated path (which endpoint failed), not its ids or query."""
    try:
        parts = urlsplit(match.group(0))
    except ValueError:
        return "<url>"
    host = (parts.hostname or "").lower()[:100]
    if not host or _SEG_HASH.match(host.split(".")[0]) or "@" in match.group(0):
        return "<url>"
    path = template_path(parts.path)
    return f"{parts.scheme.lower()}://{host}{'' if path == '/' else path}"


def _quoted(match: re.Match[str]) -> str:
    inner = next(g for g in match.groups() if g is not None)
    quote = match.group(0)[0]
    return match.group(0) if _IDENTIFIER.match(inner) else f"{quote}<str>{quote}"


def normalise_message(message: str | None) -> str:
    """The message template: engine wording unified, parameters replaced by placeholders."""
    text = _SPACES.sub(" ", (message or "")[:MAX_MESSAGE]).strip()
    text = _ENGINE_PREFIX.sub("", text)
    error_type = ""
    typed = _ERROR_TYPE.match(text)
    if typed:
        error_type, text = typed.group(1), text[typed.end() :]
    for pattern, canonical, implied_type in _CANONICAL:
        found = pattern.match(text)
        if found:
            text = canonical.format(**found.groupdict())
            error_type = error_type if error_type and error_type != "Error" else implied_type
            break
    else:
        text = _URL.sub(_url_template, text)
        # Ingest's own e-mail, phone and card rules first: stored (masked) and raw text then agree.
        # Masking stops an address at URL delimiters (`x=jane@…` keeps `x=`), so the whole token goes.
        text = _EMAIL_TOKEN.sub("<email>", mask_pii_text(text))
        text = text.replace("[phone]", "<n>").replace("[card]", "<n>")
        text = _EMAIL.sub("<email>", text)
        text = _MASKED.sub("<email>", text)
        text = _UUID.sub("<uuid>", text)
        text = _DATE.sub("<date>", text)
        text = _HEX.sub("<n>", text)  # one placeholder: a hex id may happen to be all digits
        text = _AMOUNT.sub("<amount>", text)
        text = _QUOTED.sub(_quoted, text)
        text = _TOKEN.sub("<id>", text)
        text = _NUMBER.sub("<n>", text)
        text = _NAME.sub(r"\1<name>", text)
    return f"{error_type}: {text}" if error_type else text


# ---- pages ----------------------------------------------------------------------------------

_SEG_NUMBER = re.compile(r"^\d+$")
_SEG_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
_SEG_HASH = re.compile(r"^(?=.*\d)[0-9a-f]{8,}$", re.I)
_SEG_TOKEN = re.compile(r"^(?=.*\d)(?=.*[A-Za-z])[\w\-.~]{6,}$")


def template_path(url: str | None) -> str:
    """`https://shop.example/orders/8812/?x=1` -> `/orders/:id`."""
    raw = (url or "")[:MAX_URL]
    try:
        path = urlsplit(raw).path if "://" in raw else raw.split("?", 1)[0].split("#", 1)[0]
    except ValueError:
        path = ""
    out: list[str] = []
    for seg in path.split("/"):
        if not seg:
            continue
        if _SEG_NUMBER.match(seg):
            out.append(":id")
        elif _SEG_UUID.match(seg):
            out.append(":uuid")
        elif "@" in seg or "%40" in seg.lower() or _MASKED.search(seg):
            out.append(":email")
        elif _SEG_HASH.match(seg):
            out.append(":hash")
        elif _SEG_TOKEN.match(seg):
            out.append(":token")
        else:
            out.append(seg.lower()[:60])
    return "/" + "/".join(out[:12])


# ---- stacks ---------------------------------------------------------------------------------

# V8: "    at fn (url:1:2)", "    at url:1:2", "    at async fn (url:1:2)", "    at new Fn (url)"
_V8_FRAME = re.compile(r"^\s*at (?:(?:async |new )?(?P<fn>[^()]*?) \()?(?P<loc>[^()\s]+?)\)?\s*$")
# SpiderMonkey / JavaScriptCore: "fn@url:1:2", "@url:1:2", "async*fn@url:1:2", "o/<@url:1:2"
_GECKO_FRAME = re.compile(r"^\s*(?:async\*)?(?P<fn>[^@\s]*)@(?P<loc>\S+)\s*$")
_LINE_COL = re.compile(r"(?::\d+){1,2}$")
_ALIAS = re.compile(r"\[as ([\w$]+)\]")
_NOT_IN_APP = re.compile(
    r"^(?:chrome|moz|safari(?:-web)?)-extension:|^webkit-masked-url:|^native$|^<anonymous>$|"
    r"node_modules|(?:^|[/.\-_])vendors?(?:[/.\-_]|$)",
    re.I,
)
# A release hash, build number or version between the dots and dashes of a file name.
_BUILD_PART = re.compile(r"^(?:(?=[a-z]*\d)[0-9a-f]{5,}|\d+|min|v\d+|(?=[a-z]*\d)[a-z0-9]{8,})$", re.I)


def _clean_file(location: str) -> tuple[str, bool]:
    """(base name without hashes, in-app?) from a frame's `url:line:col`."""
    return _clean_script(_LINE_COL.sub("", location.strip()))


@lru_cache(maxsize=4096)  # a site has few script files per release; stacks repeat them
def _clean_script(loc: str) -> tuple[str, bool]:
    in_app = not _NOT_IN_APP.search(loc)
    path = loc.split("?", 1)[0].split("#", 1)[0]
    base = path.rstrip("/").rsplit("/", 1)[-1] or path
    parts = [p for p in re.split(r"[.\-_]", base) if p]
    if len(parts) > 1:
        ext = parts[-1].lower()
        kept = [p for p in parts[:-1] if not _BUILD_PART.match(p)]
        base = ".".join([*kept, ext]) if kept else ext
    return base.lower()[:80], in_app


def _clean_function(name: str) -> str:
    """A readable function name or "" (minified, anonymous)."""
    if "/<" in name or "<anonymous>" in name:  # SpiderMonkey's "f/<" is an anonymous function inside f
        return ""
    alias = _ALIAS.search(name)
    own = _ALIAS.sub("", name).strip().rsplit(".", 1)[-1]
    for candidate in (own, alias.group(1) if alias else ""):  # V8's "[as x]" is the name it was called by
        if len(candidate) > 3 and re.fullmatch(r"[A-Za-z_$][\w$]*", candidate):
            return candidate
    return ""


def top_frames(stack: str | None, limit: int = TOP_FRAMES) -> tuple[str, ...]:
    """The top in-app frames as `file:function` (or `file`), newest call first."""
    frames: list[tuple[str, bool]] = []
    for line in (stack or "")[:MAX_STACK].splitlines()[:60]:
        found = _V8_FRAME.match(line) or _GECKO_FRAME.match(line)
        if not found or (not _LINE_COL.search(found.group("loc")) and "://" not in found.group("loc")):
            continue
        file, in_app = _clean_file(found.group("loc"))
        fn = _clean_function(found.group("fn") or "")
        frames.append((f"{file}:{fn}" if fn else file, in_app))
    chosen = [f for f, in_app in frames if in_app] or [f for f, _ in frames]
    collapsed: list[str] = []
    for frame in chosen:
        if not collapsed or collapsed[-1] != frame:
            collapsed.append(frame)
    return tuple(collapsed[:limit])


# ---- elements -------------------------------------------------------------------------------

_NTH = re.compile(r":nth-(?:child|of-type|last-child|last-of-type)\([^)]*\)")
_CSS_HASH = re.compile(r"\.(?:css|sc|jsx|emotion)-[A-Za-z0-9]+|__[A-Za-z0-9]{5,}\b")
_DIGITS = re.compile(r"\d+")


def template_selector(selector: str | None) -> str:
    """`div.row:nth-of-type(3) > button#pay-8812.Button_primary__3xYz1`
    -> `div.row > button#pay-:n.button_primary`."""
    text = (selector or "")[:MAX_SELECTOR]
    text = _NTH.sub("", text)
    text = _CSS_HASH.sub("", text)
    text = _DIGITS.sub(":n", text)
    return _SPACES.sub(" ", text).strip().lower()


# ---- fingerprints ---------------------------------------------------------------------------


def _key(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _source_file(source: str | None) -> str:
    """The script window.onerror named (`main.3f9a2c1b.js` -> `main.js`), or "".

    A vendor bundle counts too, as a stack's frames do when no in-app frame is left."""
    loc = (source or "")[:MAX_URL].strip()
    if "://" not in loc:
        return ""
    file, _ = _clean_script(_LINE_COL.sub("", loc))
    return file if "." in file else ""


def fingerprint_error(
    message: str | None, page_url: str | None, stack: str | None = None, source: str | None = None
) -> Fingerprint:
    template = normalise_message(message)
    page = template_path(page_url)
    frames = top_frames(stack)
    # Without a stack, the script that threw locates the defect wherever it runs; the page is the
    # last resort (a rejected promise or a cross-origin "Script error." names no script).
    located_by = "\x1e".join(frames) if frames else (_source_file(source) or page)
    return Fingerprint(
        key=_key("error", template, located_by),
        kind="error",
        message=template,
        page=page,
        frames=frames,
        element="",
    )


def fingerprint_clicks(kind: IssueKind, page_url: str | None, selector: str | None) -> Fingerprint:
    if kind == "error":
        raise ValueError("clicks are rage_click or dead_click")
    page = template_path(page_url)
    element = template_selector(selector)
    return Fingerprint(
        key=_key(kind, page, element), kind=kind, message="", page=page, frames=(), element=element
    )


def fingerprint_event(
    event_type: str, data: dict[str, object] | None, page_url: str | None, selector: str | None
) -> Fingerprint | None:
    """The fingerprint of one stored event, or None for event types that are not issues."""
    data = data or {}
    if event_type == "error":
        message = data.get("message")
        stack = data.get("stack")
        source = data.get("source")
        return fingerprint_error(
            message if isinstance(message, str) else None,
            page_url,
            stack if isinstance(stack, str) else None,
            source if isinstance(source, str) else None,
        )
    if event_type in ("rage_click", "dead_click"):
        return fingerprint_clicks(event_type, page_url, selector)  # type: ignore[arg-type]
    return None
