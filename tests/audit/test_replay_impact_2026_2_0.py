"""The impact report of 2026.2.0 over decisions recorded under 2026.1.0 (issue 10 item 7)."""

from __future__ import annotations

from referral_api.audit.replay import impact
from tests.factories import lumbar_request


def _record(app, **changes):
    svc = app.extensions["referral_api"]
    request = svc.request_schema.load(lumbar_request(**changes))
    record, _ = svc.decisions.decide(request, channel="api", client="impact-test")
    return record


def test_report_counts_rating_urgency_and_first_study_by_scenario(app_2026_1_0) -> None:
    svc = app_2026_1_0.extensions["referral_api"]
    records = [
        # Sciatica: UNA and no imaging in both versions (scenario id changes).
        _record(app_2026_1_0, patient={"age": 38}, findings=["radiculopathy"],
                symptom_duration_weeks=1),
        # Unchanged: uncomplicated low back pain.
        _record(app_2026_1_0),
        # Weight loss: urgent MRI -> routine radiographs.
        _record(app_2026_1_0, patient={"age": 55}, findings=["unexplained_weight_loss"]),
    ]
    assert {r["ruleset"]["version"] for r in records} == {"2026.1.0"}
    report = impact(records, svc.registry.get("2026.2.0"), svc.registry.vocabulary)
    data = report.to_dict()
    assert data["total"] == 3 and data["recorded_versions"] == {"2026.1.0": 3}
    weak = data["by_recorded_scenario"]["lumbar.suspected_malignancy"]
    assert weak == {"total": 1, "rating": 1, "urgency": 1, "urgency_up": 0, "urgency_down": 1,
                    "first_study": 1, "to": {"lumbar.weak_malignancy_risk": 1}}
    assert data["changed_first_study"] >= 1 and data["urgency_down"] >= 1
    text = report.markdown(title="Measured impact")
    assert text.startswith("## Measured impact")
    assert "| lumbar.suspected_malignancy | 1 | 1 | 1 (0/1) | 1 |" in text
    assert "lumbar.weak_malignancy_risk" in text
    assert "MRN" not in text  # no patient identifier in the document


def test_replay_under_its_own_version_changes_nothing(app_2026_1_0) -> None:
    svc = app_2026_1_0.extensions["referral_api"]
    records = [_record(app_2026_1_0, findings=["urinary_retention"]),
               _record(app_2026_1_0, patient={"age": 12}, findings=["fever"])]
    report = impact(records, svc.registry.get("2026.1.0"), svc.registry.vocabulary)
    assert (report.changed, report.changed_first_study, report.changed_scenario) == (0, 0, 0)
