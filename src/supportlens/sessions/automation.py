"""Is a session a person? Automated traffic is never a customer (pure: no I/O).

A session is *automated* for one of these reasons, the first found kept for good:

- `webdriver`: `supportlens.js` read `navigator.webdriver` as true (Selenium, Playwright, Puppeteer
  and headless browsers under automation set it, by the WebDriver standard);
- `bot`: ua-parser says the User-Agent is a crawler or monitor (its device family `Spider`: Googlebot,
  UptimeRobot, Pingdom, StatusCake ...);
- `headless`: a headless browser's own User-Agent (`HeadlessChrome`, PhantomJS);
- `script`: an HTTP library or command-line tool, not a browser (curl, Wget, python-requests, Go's
  client ...): by ua-parser's family, else by the User-Agent's first product token;
- `rate` (decided by the mapping worker, which counts): more new sessions a minute from one browser
  or one address than people make (`RATE_LIMIT` in `RATE_WINDOW`).

A session whose page reports no human interaction yet (no pointer, key, touch or scroll: the SDK says
`interacted: false`) is not automated, since the person may simply not have moved yet; but until it
does, it neither gives nor receives device or network evidence (`carries_evidence`). A later batch
with an interaction lets the mapping worker score it as any other.

Automated sessions carry and receive no evidence of any kind and are never listed as a customer's
(`listable`): a script that signs in as a customer (a merchant's own end-to-end test) is still a script.
A session whose SDK reported nothing about automation (an older `supportlens.js`) is judged by its
User-Agent alone.
"""

from __future__ import annotations

import re
from datetime import timedelta
from functools import lru_cache

REASONS = ("webdriver", "bot", "headless", "script", "rate")
RATE_WINDOW = timedelta(seconds=60)
# People open a few tabs a minute at most; a monitor or a scraper opens dozens (the demo's curl loop
# sent 112 in two minutes from one address). An office behind one address makes many sessions a day,
# but not 24 new ones in the same minute.
RATE_LIMIT = 24

# ua-parser families of HTTP libraries and tools (its regexes name them; it gives them no device).
SCRIPT_FAMILIES = frozenset(
    {
        "curl",
        "Wget",
        "Python Requests",
        "Python-urllib",
        "Go-http-client",
        "okhttp",
        "PostmanRuntime",
        "axios",
        "Java",
        "Apache-HttpClient",
        "libwww-perl",
        "Scrapy",
        "HTTPie",
        "aiohttp",
    }
)
# The same, for User-Agents ua-parser does not name: the first product token of a library or tool.
SCRIPT_TOKEN = re.compile(
    r"^(curl|wget|python-(requests|urllib|httpx2?)|python/|httpx|aiohttp|go-http-client|okhttp|java/|"
    r"apache-httpclient|node-fetch|undici|axios|got |libwww-perl|lwp::|ruby|php/|guzzlehttp|scrapy|"
    r"httpie|postmanruntime|insomnia|dart:io|reqwest|rest-client|faraday|powershell|winhttp|"
    r"datadog/synthetics|playwright|puppeteer|selenium)",
    re.IGNORECASE,
)
HEADLESS = re.compile(r"headless|phantomjs", re.IGNORECASE)


@lru_cache(maxsize=4096)
def agent_reason(user_agent: str | None) -> str | None:
    """The automation reason a User-Agent alone gives (`bot`, `headless`, `script`), else None."""
    if not user_agent:
        return "script"  # every browser sends one; only a hand-made request has none
    ua = user_agent[:512]
    if HEADLESS.search(ua):
        return "headless"
    from ua_parser import parse

    result = parse(ua)
    if result.device is not None and result.device.family == "Spider":
        return "bot"
    family = result.user_agent.family if result.user_agent else None
    if family in SCRIPT_FAMILIES or SCRIPT_TOKEN.match(ua.lstrip()):
        return "script"
    return None


def batch_reason(user_agent: str | None, *, webdriver: bool) -> str | None:
    """Why this batch's session is automated, from what the batch itself shows; None: maybe a person."""
    return "webdriver" if webdriver else agent_reason(user_agent)


def listable(automated: str | None) -> bool:
    """Whether the session may appear in a customer's list at all."""
    return automated is None


def carries_evidence(automated: str | None, human_interaction: bool | None) -> bool:
    """Whether the session gives and receives device and network evidence.

    `human_interaction` None: the page's SDK did not say (older script): judged as a person."""
    return automated is None and human_interaction is not False
