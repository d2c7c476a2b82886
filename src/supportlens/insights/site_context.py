"""Site context per page from the stored Clarity snapshots: how a page's frustration (rage and dead
clicks, quick backs, excessive scrolling, script errors) compares with the site's, said in words."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from supportlens.insights.models import ClaritySnapshot
from supportlens.integrations.clarity.models import InsightMetric, page_path, parse_live_insights

# The frustration metrics shown per page, with the words used for them.
FRUSTRATION = (
    ("RageClickCount", "rage_clicks", "rage clicks"),
    ("DeadClickCount", "dead_clicks", "dead clicks"),
    ("ScriptErrorCount", "script_errors", "script errors"),
    ("QuickbackClick", "quick_backs", "quick backs"),
)
ELEVATED_RATIO = 2.0
ELEVATED_MIN_RATE = 2.0  # percent of sessions


def _fmt_pct(value: float) -> str:
    if value >= 10 or value == int(value):
        return f"{value:.0f}%"
    return f"{value:.1f}%"


def _fmt_ratio(value: float) -> str:
    if value >= 10:
        return f"{value:.0f}×"
    text = f"{value:.1f}".rstrip("0").rstrip(".")
    return f"{text}×"


@dataclass
class PageMetric:
    key: str  # rage_clicks | dead_clicks | script_errors | quick_backs
    label: str  # "rage clicks"
    page_rate: float  # percent of the page's sessions with it
    site_rate: float | None  # percent of all sessions of the site
    sessions: int | None = None

    @property
    def ratio(self) -> float | None:
        if self.site_rate is None or self.site_rate <= 0:
            return None
        return self.page_rate / self.site_rate

    @property
    def elevated(self) -> bool:
        r = self.ratio
        return self.page_rate >= ELEVATED_MIN_RATE and (r is None or r >= ELEVATED_RATIO)

    @property
    def sentence(self) -> str:
        text = f"{self.label} in {_fmt_pct(self.page_rate)} of all sessions"
        if self.ratio is not None:
            if self.ratio >= 1.05:
                text += f", {_fmt_ratio(self.ratio)} the site's average"
            elif self.ratio <= 0.95:
                text += f", below the site's average of {_fmt_pct(self.site_rate or 0)}"
            else:
                text += ", about the site's average"
        return text


@dataclass
class PageContext:
    """Site-wide Clarity figures for one page a customer visited."""

    url: str
    path: str
    found: bool
    sessions: int | None = None
    metrics: list[PageMetric] = field(default_factory=list)
    snapshot_at: datetime | None = None
    num_of_days: int | None = None

    @property
    def elevated(self) -> list[PageMetric]:
        return [m for m in self.metrics if m.elevated]

    @property
    def verdict(self) -> str:
        """site_wide (broken for everyone) | normal (probably only this customer) | no_data."""
        if not self.found:
            return "no_data"
        return "site_wide" if self.elevated else "normal"

    @property
    def headline(self) -> str:
        if not self.found:
            return f"{self.path}: no Clarity insights for this page yet."
        if self.elevated:
            worst = max(self.elevated, key=lambda m: m.ratio or 0)
            return f"{self.path}: {worst.sentence}."
        return f"{self.path}: no more frustration here than elsewhere on the site."

    @property
    def advice(self) -> str:
        if self.verdict == "site_wide":
            return "Broken for everyone: many visitors struggle on this page, not only this customer."
        if self.verdict == "normal":
            return "Looks normal site-wide: what this customer met is probably specific to them."
        return "Clarity has no figures for this page in the latest snapshot."


@dataclass
class _Agg:
    sessions: float = 0.0
    with_metric: float = 0.0

    @property
    def rate(self) -> float | None:
        return 100.0 * self.with_metric / self.sessions if self.sessions > 0 else None


def _frustration_by_path(metrics: list[InsightMetric]) -> tuple[dict[str, dict[str, _Agg]], dict[str, _Agg]]:
    per_path: dict[str, dict[str, _Agg]] = {}
    site: dict[str, _Agg] = {}
    wanted = {m[0]: m[1] for m in FRUSTRATION}
    for metric in metrics:
        key = wanted.get(metric.name)
        if key is None:
            continue
        for row in metric.rows:
            sessions = row.get("sessionsCount")
            pct = row.get("sessionsWithMetricPercentage")
            if pct is None and sessions and row.get("sessionsWithoutMetricPercentage") is not None:
                pct = 100.0 - (row.get("sessionsWithoutMetricPercentage") or 0.0)
            if sessions is None or pct is None or sessions <= 0:
                continue
            with_metric = sessions * max(0.0, min(pct, 100.0)) / 100.0
            s = site.setdefault(key, _Agg())
            s.sessions += sessions
            s.with_metric += with_metric
            url = row.dimensions.get("URL")
            if url is None:
                continue
            agg = per_path.setdefault(page_path(url), {}).setdefault(key, _Agg())
            agg.sessions += sessions
            agg.with_metric += with_metric
    return per_path, site


def _traffic_by_path(metrics: list[InsightMetric]) -> dict[str, float]:
    out: dict[str, float] = {}
    for metric in metrics:
        if metric.name not in ("Traffic", "PopularPages"):
            continue
        for row in metric.rows:
            url = row.dimensions.get("URL") or row.labels.get("url") or row.labels.get("Url")
            count = row.get("totalSessionCount") or row.get("sessionsCount") or row.get("visitsCount")
            if url and count:
                out[page_path(url)] = out.get(page_path(url), 0.0) + count
    return out


async def latest_snapshots(
    db: AsyncSession, project_id: str | None = None
) -> tuple[ClaritySnapshot | None, ClaritySnapshot | None]:
    """(latest snapshot with the URL dimension, latest site-wide one without dimensions)."""
    query = select(ClaritySnapshot).order_by(ClaritySnapshot.pulled_at.desc()).limit(50)
    if project_id:
        query = query.where(ClaritySnapshot.project_id == project_id)
    rows = (await db.scalars(query)).all()
    by_url = next((s for s in rows if "URL" in (s.dimensions or [])), None)
    site = next((s for s in rows if not s.dimensions), None)
    return by_url, site


async def site_context(
    db: AsyncSession, urls: list[str] | tuple[str, ...] | set[str], *, project_id: str | None = None
) -> dict[str, PageContext]:
    """For each page URL (or path) a customer visited: the site-wide frustration rates of that page
    from the latest Clarity snapshot, beside the site's average. Keys are the URLs as given.
    `project_id`: only that project's snapshots (default: the latest of any project)."""
    wanted = [u for u in dict.fromkeys(urls) if isinstance(u, str) and u.strip()][:200]
    if not wanted:
        return {}
    by_url, site_snap = await latest_snapshots(db, project_id)
    out: dict[str, PageContext] = {}
    if by_url is None:
        return {u: PageContext(url=u, path=page_path(u), found=False) for u in wanted}
    metrics = parse_live_insights(by_url.payload)
    per_path, site_from_urls = _frustration_by_path(metrics)
    traffic = _traffic_by_path(metrics)
    site_rates = {k: a.rate for k, a in site_from_urls.items()}
    if site_snap is not None:
        _, site_totals = _frustration_by_path(parse_live_insights(site_snap.payload))
        for k, agg in site_totals.items():
            if agg.rate is not None:
                site_rates[k] = agg.rate
    for u in wanted:
        path = page_path(u)
        aggs = per_path.get(path)
        ctx = PageContext(
            url=u,
            path=path,
            found=aggs is not None,
            snapshot_at=by_url.pulled_at,
            num_of_days=by_url.num_of_days,
        )
        if aggs:
            sessions = traffic.get(path) or max((a.sessions for a in aggs.values()), default=0)
            ctx.sessions = int(sessions) if sessions else None
            for _, key, label in FRUSTRATION:
                found = aggs.get(key)
                if found is None or found.rate is None:
                    continue
                ctx.metrics.append(
                    PageMetric(
                        key=key,
                        label=label,
                        page_rate=found.rate,
                        site_rate=site_rates.get(key),
                        sessions=int(found.sessions),
                    )
                )
        out[u] = ctx
    return out
