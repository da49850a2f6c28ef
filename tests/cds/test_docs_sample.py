"""The sample in docs/ehr-integration.md is what the service answers (docs kept true)."""

from __future__ import annotations

import json
import re

from referral_api.config import PROJECT_ROOT

DOC = PROJECT_ROOT / "docs" / "ehr-integration.md"
#: The sample's decision time: its onset (2026-11-02) and birth date are read at this instant.
SAMPLE_TIME = "2026-12-01T12:00:00+00:00"


def sample_blocks() -> tuple[dict, dict]:
    text = DOC.read_text(encoding="utf-8").split("## Sample", 1)[1]
    blocks = re.findall(r"```json\n(.*?)\n```", text, flags=re.DOTALL)
    assert len(blocks) == 2, "the sample has a request and a response"
    return json.loads(blocks[0]), json.loads(blocks[1])


def test_sample_response_is_what_the_service_returns(build_cds_app):
    request, documented = sample_blocks()
    app = build_cds_app(PUBLIC_URL="https://referral.example.org",
                        EVALUATION_TIME=SAMPLE_TIME)
    key = app.extensions["referral_api"].keys.create(["evaluator"], "docs")[1]
    response = app.test_client().post("/cds-services/spine-mri-appropriateness", json=request,
                                      headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200
    actual = response.get_json()
    # Decision ids are new on every run: put the documented one in place of the new one.
    text = json.dumps(actual).replace(actual["cards"][0]["uuid"],
                                      documented["cards"][0]["uuid"])
    assert json.loads(text) == documented
    app.extensions["referral_api"].log.close()
