"""What a person's browser sends, for tests that play one (the client libraries' own User-Agents are
automated traffic: sessions/automation.py)."""

BROWSER_USER_AGENT = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
BROWSER = {"user-agent": BROWSER_USER_AGENT}
