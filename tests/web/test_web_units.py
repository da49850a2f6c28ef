"""Pure helpers of the web pages: form mapping, audit filters, week buckets, SVG, CSV."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from werkzeug.datastructures import MultiDict

from referral_api.web import charts
from referral_api.web.audit import APPROPRIATENESS_SERIES, override_rows, weekly_bars
from referral_api.web.filter_form import parse_filters
from referral_api.web.form_data import field_errors, read_form, to_api_request
from referral_api.web.session_auth import safe_next

SVG = "{http://www.w3.org/2000/svg}"


def svg_root(markup: str) -> ET.Element:
    """Parse SVG this module generated (trusted input); fails unless it is well-formed XML."""
    return ET.fromstring(markup)  # noqa: S314


def test_form_maps_to_api_request_shape() -> None:
    values = read_form(MultiDict([
        ("age", " 52 "), ("sex", "female"), ("region", "lumbar"),
        ("symptom_duration_weeks", "1.5"), ("conservative_care_weeks", ""),
        ("findings", "urinary_retention"), ("findings", "fever"), ("findings", "fever"),
        ("intervention_candidate", "true"), ("egfr", "abc"),
    ]))
    body = to_api_request(values)
    assert body == {
        "patient": {"age": 52, "sex": "female"},
        "region": "lumbar",
        "symptom_duration_weeks": 1.5,
        "egfr": "abc",  # left for the schema to refuse, with its own message
        "intervention_candidate": True,
        "findings": ["urinary_retention", "fever"],
        "contraindications": [],
    }


def test_non_finite_numbers_are_not_passed_as_numbers() -> None:
    body = to_api_request(read_form(MultiDict([("symptom_duration_weeks", "nan")])))
    assert body["symptom_duration_weeks"] == "nan"


def test_schema_errors_land_on_form_controls() -> None:
    errors = field_errors({
        "patient": {"age": ["Must be greater than or equal to 0 and less than or equal to 120."]},
        "region": ["Missing data for required field."],
        "findings": {1: ["Unknown finding code 'x'."]},
        "colour": ["Unknown field."],
    })
    assert errors["age"] == ["Must be greater than or equal to 0 and less than or equal to 120."]
    assert errors["region"] == ["Required: enter a value."]
    assert errors["findings"] == ["Unknown finding code 'x'."]
    assert errors["_form"] == ["colour: Unknown field."]


def test_audit_filters_parse_and_refuse() -> None:
    parsed = parse_filters({"since": "2026-11-01", "until": "2026-11-23", "region": "lumbar",
                            "channel": "form", "client": "ward-7", "bogus": "x"})
    assert parsed.valid
    assert parsed.filters == {"since": "2026-11-01T00:00:00.000Z",
                              "until": "2026-11-23T23:59:59.999Z",
                              "region": "lumbar", "channel": "form", "client": "ward-7"}
    bad = parse_filters({"since": "yesterday", "urgency": "soon", "feedback": "none"})
    assert set(bad.errors) == {"since", "urgency"}
    assert bad.filters == {"feedback": "none"}
    backwards = parse_filters({"since": "2026-11-02", "until": "2026-11-01"})
    assert backwards.errors == {"until": "'Until' must not be before 'since'."}
    offset = parse_filters({"since": "2026-11-23T18:00:00+01:00"})
    assert offset.filters == {"since": "2026-11-23T17:00:00.000Z"}
    assert parse_filters({"since": "0001-01-01T00:00:00+05:00"}).errors == {
        "since": "Enter a date (YYYY-MM-DD) or an ISO 8601 time."}


def test_weekly_bars_bucket_by_iso_week_and_fill_gaps() -> None:
    groups = [
        {"day": "2026-11-02", "appropriateness": "usually_appropriate", "count": 2},  # Mon
        {"day": "2026-11-08", "appropriateness": "usually_appropriate", "count": 1},  # Sun
        {"day": "2026-11-08", "appropriateness": "not_covered", "count": 4},
        {"day": "2026-11-23", "appropriateness": "may_be_appropriate", "count": 1},
    ]
    bars, dropped = weekly_bars(groups)
    assert dropped == 0
    assert [b.long_label for b in bars] == ["Week of 2026-11-02", "Week of 2026-11-09",
                                            "Week of 2026-11-16", "Week of 2026-11-23"]
    assert bars[0].counts == {"usually_appropriate": 3, "not_covered": 4}
    assert [b.total for b in bars] == [7, 0, 0, 1]


def test_stacked_chart_is_valid_accessible_svg_with_escaped_text() -> None:
    bars = [charts.StackedBar("02 Nov", "Week <script>", {"usually_appropriate": 3,
                                                          "not_covered": 4})]
    svg = charts.stacked_bar_chart(bars, APPROPRIATENESS_SERIES, chart_id="c1",
                                   title="Decisions & weeks", desc="desc")
    root = svg_root(svg)  # well-formed XML: every text was escaped
    assert root.get("role") == "img" and root.get("aria-labelledby") == "c1-title c1-desc"
    assert root.find(f"{SVG}title").text == "Decisions & weeks"
    rects = [r for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    assert [r.find(f"{SVG}title").text for r in rects] == [
        "Week <script>: Usually appropriate 3", "Week <script>: Not covered 4"]
    heights = [float(r.get("height")) for r in rects]
    assert abs(heights[1] / heights[0] - 4 / 3) < 0.01  # bars are drawn to scale


def test_rate_chart_handles_no_feedback_and_empty() -> None:
    rows = override_rows([
        {"scenario": "lumbar.cauda_equina", "count": 4, "override_rate": 0.25},
        {"scenario": "lumbar.uncomplicated", "count": 9, "override_rate": None},
    ])
    assert [r.label for r in rows] == ["lumbar.uncomplicated", "lumbar.cauda_equina"]
    root = svg_root(charts.rate_bar_chart(rows, chart_id="o", title="t", desc="d"))
    texts = " ".join("".join(t.itertext()) for t in root.iter(f"{SVG}text"))
    assert "25% · 4 decisions" in texts and "no feedback · 9 decisions" in texts
    empty = svg_root(charts.rate_bar_chart([], chart_id="e", title="t", desc="d"))
    assert "No decisions match" in "".join(empty.itertext())


def test_nice_ceiling() -> None:
    assert charts.nice_ceiling(0) == (1, 1)
    assert charts.nice_ceiling(7) == (8, 2)
    assert charts.nice_ceiling(43) == (50, 10)
    assert charts.nice_ceiling(1234) == (1500, 500)


def test_dashboard_csv_is_the_export_module() -> None:
    # One CSV definition: the dashboard lists and streams exactly the API's columns.
    from referral_api.audit import export
    from referral_api.web import audit

    assert audit.CSV_COLUMNS is export.CSV_COLUMNS
    assert audit.iter_export is export.iter_export
    assert not hasattr(audit, "csv_row") and not hasattr(audit, "csv_lines")


def test_safe_next() -> None:
    assert safe_next("/?age=3", "/") == "/?age=3"
    for bad in ("https://x.example/", "//x.example", "javascript:alert(1)", "/\\x.example", ""):
        assert safe_next(bad, "/") == "/"
