"""Tolerant parsing of Clarity's Data Export answers and recordings items."""

from __future__ import annotations

from supportlens.integrations.clarity.export_api import validate_request
from supportlens.integrations.clarity.models import (
    canonical_dimension,
    canonical_metric,
    page_path,
    parse_duration,
    parse_live_insights,
    parse_player_link,
    parse_recording,
    to_number,
)

DOCUMENTED = [
    {
        "metricName": "Traffic",
        "information": [
            {
                "totalSessionCount": "291942",
                "totalBotSessionCount": "31076",
                "distantUserCount": "212836",
                "PagesPerSessionPercentage": 2.2609,
                "OS": "Android",
            }
        ],
    }
]


def test_documented_sample_parses_with_string_counts():
    [traffic] = parse_live_insights(DOCUMENTED)
    assert traffic.name == "Traffic"
    [row] = traffic.rows
    assert row.dimensions == {"OS": "Android"}
    assert row.get("totalSessionCount") == 291942.0
    assert row.get("totalBotSessionCount") == 31076.0
    assert row.get("distinctUserCount") == 212836.0  # "distant" is Clarity's spelling
    assert row.get("pagesPerSession") == 2.2609


def test_spelling_variants_of_metrics_and_fields():
    variants = [
        {
            "metricName": "Dead Click Count",
            "information": [
                {
                    "URL": "https://s.example/pay",
                    "sessionsCount": "100",
                    "sessionsWithMetricPercentage": "11.5",
                }
            ],
        },
        {
            "MetricName": "rage click count",
            "Information": [
                {"Url": "https://s.example/pay", "SessionCount": 40, "sessionWithMetricPercentage": "14%"}
            ],
        },
        {
            "metricName": "Traffic",
            "information": [{"distinctUserCount": "1,234", "totalSessionsCount": "2000"}],
        },
        {
            "metricName": "Quickback Click",
            "information": {"sessionsCount": "9", "sessionsWithMetricPercentage": 1},
        },
        {"metricName": "Country/Region", "information": [{"country": "Germany", "sessionsCount": "7"}]},
    ]
    metrics = {m.name: m for m in parse_live_insights(variants)}
    assert set(metrics) == {"DeadClickCount", "RageClickCount", "Traffic", "QuickbackClick", "Country/Region"}
    dead = metrics["DeadClickCount"].rows[0]
    assert dead.dimensions["URL"] == "https://s.example/pay"
    assert dead.get("sessionsCount") == 100 and dead.get("sessionsWithMetricPercentage") == 11.5
    rage = metrics["RageClickCount"].rows[0]
    assert rage.dimensions["URL"] == "https://s.example/pay"
    assert rage.get("sessionsCount") == 40 and rage.get("sessionsWithMetricPercentage") == 14
    traffic = metrics["Traffic"].rows[0]
    assert traffic.get("distinctUserCount") == 1234 and traffic.get("totalSessionCount") == 2000
    assert metrics["QuickbackClick"].rows[0].get("sessionsCount") == 9
    assert metrics["Country/Region"].rows[0].dimensions == {"Country/Region": "Germany"}


def test_unknown_shapes_are_dropped_not_fatal():
    assert parse_live_insights(None) == []
    assert parse_live_insights("oops") == []
    assert parse_live_insights({"data": [{"metricName": "Traffic", "information": []}]})[0].name == "Traffic"
    parsed = parse_live_insights(
        [1, "x", {"nope": 1}, {"metricName": "Traffic", "information": [None, 5, {}]}]
    )
    assert [m.name for m in parsed] == ["Traffic"]
    assert to_number("n/a") is None and to_number(True) is None and to_number(" 12.5% ") == 12.5


def test_names_and_request_validation():
    assert canonical_metric("Script Error Count") == "ScriptErrorCount"
    assert canonical_metric("DEADCLICKCOUNT") == "DeadClickCount"
    assert canonical_dimension("country/region") == "Country/Region"
    assert canonical_dimension("Planet") is None
    assert validate_request(1, ["url", "device"]) == ["URL", "Device"]
    for bad in ((0, []), (4, []), (1, ["Planet"]), (1, ["URL", "OS", "Device", "Browser"])):
        try:
            validate_request(*bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad} accepted")


def test_player_links_durations_and_paths():
    assert parse_player_link("https://clarity.microsoft.com/player/p1/u9x/s77") == ("p1", "u9x", "s77")
    assert parse_player_link("https://clarity.microsoft.com/player/p1/u9x/s77/") == ("p1", "u9x", "s77")
    assert parse_player_link("https://clarity.microsoft.com/projects/view/p1/dashboard") is None
    assert parse_player_link("https://x/player/p1/u/s/<script>") is None
    assert parse_player_link(None) is None
    assert parse_duration("09 minutes and 05 seconds") == 545
    assert parse_duration("1 hour 2 minutes") == 3720
    assert parse_duration("00:09:05") == 545
    assert parse_duration("12") == 12 and parse_duration("soon") is None
    assert page_path("https://shop.example/pay/?x=1#y") == "/pay"
    assert page_path("https://shop.example") == "/"
    assert page_path("/pay?x") == "/pay"


def test_recording_item_with_timeline_and_smart_events():
    item = parse_recording(
        {
            "link": "https://clarity.microsoft.com/player/demo123/1oh3r9k/1o9gaa3",
            "timestamp": "2026-11-26 10:41:07",
            "totalDuration": "09 minutes and 05 seconds",
            "activeDuration": "03 minutes and 10 seconds",
            "pagesCount": "3",
            "sessionClickCount": 17,
            "timeline": [
                {
                    "url": "https://shop.example/",
                    "displayTitle": "Home",
                    "start": 0,
                    "timelineEvents": [{"eventtype": "Click"}, {"eventtype": "Quickback"}],
                },
                {
                    "url": "https://shop.example/pay",
                    "displayTitle": "Pay",
                    "start": 6000,
                    "timelineEvents": [
                        {"eventtype": "Rage clicks"},
                        {"eventtype": "Dead click"},
                        {"eventtype": "Dead click"},
                        "junk",
                        {"eventtype": "Something new"},
                    ],
                },
                "junk",
            ],
        }
    )
    assert item is not None
    assert (item.project_id, item.user_id, item.session_id) == ("demo123", "1oh3r9k", "1o9gaa3")
    assert item.total_duration_seconds == 545 and item.active_duration_seconds == 190
    assert item.pages_count == 3 and item.click_count == 17
    assert item.smart_events == {"clicks": 1, "quickbacks": 1, "rageClicks": 1, "deadClicks": 2}
    assert item.timestamp is not None and item.timestamp.hour == 10
    assert [p["url"] for p in item.pages] == ["https://shop.example/", "https://shop.example/pay"]
    assert parse_recording({"link": "not a link"}) is None
    assert parse_recording(["x"]) is None
