"""Generate a synthetic decision log: N decisions evaluated by the real engine, chain valid.

    .venv/bin/python scripts/generate_log.py /tmp/audit-1m.sqlite --count 1000000

A realistic mix (regions, findings, red flags, contraindications, channels, clients, ordering
clinicians, patients) is evaluated with the rule set in force and appended through
``SQLiteDecisionLog.append_many`` in large batches (one durable transaction each), so the
records, their chain hashes and the indexes are exactly what the service would store.
Decisions are spread over ``--days`` days ending now: the script advances the decision log's
clock per batch (the log assigns ``created_at`` itself, never decreasing), so day and month
statistics and time-range filters have realistic data. A share of the CDS Hooks decisions
gets feedback (accepted or overridden) through ``append_feedback``.

Never point it at the real ``db/`` database: it refuses an existing file unless ``--append``.

``--ruleset-version`` evaluates every decision under one version (for an impact study of a
new version: a log made under the old one, e.g. ``--ruleset-version 2026.1.0``), with that
version's vocabulary. Findings are drawn with weights that follow how often they appear in
spine-imaging referrals (radicular pain and minor falls common, cauda equina signs rare: the
weights are the project's estimate, not measured data); conservative care never exceeds the
symptom duration (the API refuses that since 2026.2.0).
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import time
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from referral_api.clinical import engine
from referral_api.clinical.versions import load_registry
from referral_api.config import PROJECT_ROOT
from referral_api.secret_key import patient_hash
from referral_api.store.interface import NewDecision, NewFeedback
from referral_api.store.sqlite.db import connect
from referral_api.store.sqlite.log import SQLiteDecisionLog
from referral_api.store.sqlite.migrations import migrate

REGIONS = (("lumbar", 0.6), ("cervical", 0.3), ("thoracic", 0.1))
CHANNELS = (("api", 0.45), ("cds-hooks", 0.4), ("form", 0.15))
CLIENTS = {"api": ["ris-gateway", "referral-portal", "ortho-clinic-app"],
           "cds-hooks": ["https://ehr.example.org", "https://ehr2.example.net"],
           "form": ["test-clinician-a", "test-clinician-b", "gp-surgery-12"]}
DURATIONS = (0, 0.5, 1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 26, 40, 52, 104)
PATIENT_KEY = b"synthetic-log-patient-key-not-a-secret"
OVERRIDE_REASON = {"reason": {"code": "clinical-judgement", "system": "http://example.org",
                              "display": "Clinical judgement"}}


def _weighted(rng: random.Random, pairs: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([p[0] for p in pairs], weights=[p[1] for p in pairs])[0]


#: Relative weight of each finding among the findings a referral lists (default 1.0). An
#: estimate of referral practice for the synthetic log, not clinical data.
FINDING_WEIGHTS = {
    "radiculopathy": 14, "neurologic_deficit": 5, "minor_trauma": 6, "significant_trauma": 2,
    "osteoporosis": 3, "history_of_cancer": 3, "prior_spine_surgery": 3,
    "degenerative_changes_on_radiographs": 3, "night_pain": 2, "unexplained_weight_loss": 1.5,
    "long_term_corticosteroids": 1.5, "myelopathy_signs": 1.5, "fever": 1,
    "elevated_inflammatory_markers": 1, "immunosuppression": 1, "diabetes": 4,
    "severe_motor_deficit": 0.6, "progressive_neurologic_deficit": 0.6, "urinary_retention": 0.5,
    "bowel_or_bladder_incontinence": 0.4, "saddle_anesthesia": 0.4, "iv_drug_use": 0.4,
    "recent_bacterial_infection": 0.5, "ankylosed_spine": 0.4, "midline_cervical_tenderness": 0.8,
    "altered_mental_status": 0.3, "distracting_injury": 0.3, "bilateral_radiculopathy": 1,
    "bilateral_leg_weakness": 0.3, "intoxication": 0.3, "midline_spinal_tenderness": 0.8,
    "inflammatory_back_pain": 0.8, "cspine_rule_low_risk": 0.8,
}


class Generator:
    """Draws validated requests (defaults applied) with a plausible clinical mix."""

    def __init__(self, vocabulary, rng: random.Random) -> None:
        self.vocabulary = vocabulary
        self.rng = rng
        self.findings = sorted(vocabulary.findings)
        self.weights = [FINDING_WEIGHTS.get(code, 1.0) for code in self.findings]
        self.contraindications = sorted(vocabulary.contraindications)
        self.procedures = {r: [p.code for p in vocabulary.procedures_of_region(r)]
                           for r, _ in REGIONS}
        self.clinicians = [f"dr-{i:04d}" for i in range(400)]

    def _findings(self, count: int) -> list[str]:
        """``count`` distinct findings drawn by weight."""
        chosen: set[str] = set()
        while len(chosen) < count:
            chosen.add(self.rng.choices(self.findings, weights=self.weights)[0])
        return sorted(chosen)

    def request(self) -> dict:
        """One validated request (as ``RequestLoader.load`` returns it), reference in clear."""
        rng = self.rng
        region = _weighted(rng, REGIONS)
        n_findings = rng.choices((0, 1, 2, 3), weights=(55, 25, 12, 8))[0]
        duration = rng.choice(DURATIONS)
        request = {
            "patient": {"age": rng.randint(2, 17) if rng.random() < 0.03 else
                        int(min(95, max(18, rng.gauss(52, 16)))),
                        "sex": rng.choice(("female", "male", "female", "male", "unknown")),
                        "reference": f"MRN-{rng.randint(1, 60_000):06d}"},
            "region": region,
            "requested_procedure": (rng.choice(self.procedures[region]) if rng.random() < 0.2
                                    else self.vocabulary.default_procedure(region).code),
            "symptom_duration_weeks": duration,
            "conservative_care_weeks": (min(duration, rng.choice((0, 0, 2, 4, 6, 8)))
                                        if duration >= 4 else 0),
            "intervention_candidate": rng.random() < 0.15,
            "findings": self._findings(n_findings),
            "contraindications": ([rng.choice(self.contraindications)]
                                  if rng.random() < 0.08 else []),
        }
        if rng.random() < 0.1:
            request["egfr"] = round(rng.uniform(8, 120), 1)
        return request


def generate(path: Path, count: int, *, batch: int, days: float, feedback_rate: float,
             seed: int, append: bool, ruleset_version: str | None = None) -> dict:
    """Append ``count`` synthetic decisions to the log at ``path``; returns timings."""
    if path.exists() and not append:
        raise SystemExit(f"{path} exists; remove it or pass --append")
    db = connect(path)
    migrate(db)
    db.close()
    registry = load_registry(PROJECT_ROOT / "rules")
    rng = random.Random(seed)
    fixed = registry.get(ruleset_version) if ruleset_version else None
    # One generator per vocabulary: requests use the codes of the version that evaluates them.
    generators: dict[str, Generator] = {}
    end = dt.datetime.now(dt.UTC)
    start = end - dt.timedelta(days=days)
    # The log's clock is simulated: decisions are spread over the last ``days``.
    clock = types.SimpleNamespace(now=start)
    log = SQLiteDecisionLog(path, clock=lambda: clock.now)
    step = (end - start) / max(1, -(-count // batch))
    started = time.perf_counter()
    engine_s = append_s = 0.0
    done = feedback = 0
    while done < count:
        size = min(batch, count - done)
        news = []
        t0 = time.perf_counter()
        try:
            ruleset = fixed or registry.in_force(clock.now)
        except LookupError:
            # Before the first version's effective date: use the one in force now.
            ruleset = registry.in_force(end)
        gen = generators.get(ruleset.version)
        if gen is None:
            gen = generators[ruleset.version] = Generator(
                registry.vocabulary_for(ruleset.version), rng)
        for _ in range(size):
            request = gen.request()
            t = time.perf_counter()
            output = engine.evaluate(request, ruleset, registry.vocabulary)
            latency = (time.perf_counter() - t) * 1000
            patient = dict(request["patient"])
            hashed = patient_hash(PATIENT_KEY, patient.pop("reference"))
            patient["reference"] = hashed
            channel = _weighted(rng, CHANNELS)
            is_cds = channel == "cds-hooks"
            news.append(NewDecision(
                channel=channel,
                client=rng.choice(CLIENTS[channel]),
                ordering_clinician=rng.choice(gen.clinicians) if rng.random() < 0.8 else None,
                patient_hash=hashed,
                input={**request, "patient": patient},
                output=output,
                ruleset_version=ruleset.version,
                ruleset_sha256=ruleset.sha256,
                engine_version=engine.ENGINE_VERSION,
                latency_ms=round(latency, 3),
                hook_instance=f"hook-{done}-{len(news)}" if is_cds else None,
                order_ref=f"ServiceRequest/{rng.getrandbits(40):x}" if is_cds else None,
            ))
        t1 = time.perf_counter()
        results = log.append_many(news)
        t2 = time.perf_counter()
        engine_s += t1 - t0
        append_s += t2 - t1
        for record, _ in results:
            if record["channel"] == "cds-hooks" and rng.random() < feedback_rate:
                overridden = rng.random() < (
                    0.6 if record["appropriateness"] == "usually_not_appropriate" else 0.15)
                entry = NewFeedback(outcome="overridden" if overridden else "accepted",
                                    override_reason=OVERRIDE_REASON if overridden else None,
                                    outcome_timestamp=record["created_at"])
                log.append_feedback(record["decision_id"], entry, record["client"])
                feedback += 1
        done += size
        clock.now = min(end, clock.now + step)
        if done % (batch * 50) == 0 or done == count:
            rate = done / (time.perf_counter() - started)
            print(f"{done} decisions ({rate:,.0f}/s), {feedback} feedback", file=sys.stderr)
    log.close()
    total = time.perf_counter() - started
    return {"count": count, "feedback": feedback, "seconds": round(total, 1),
            "engine_seconds": round(engine_s, 1), "append_seconds": round(append_s, 1)}


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("database", type=Path, help="SQLite file to create (e.g. under /tmp)")
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=2000,
                        help="decisions per durable transaction (append_many)")
    parser.add_argument("--days", type=float, default=365,
                        help="spread created_at over this many days ending now")
    parser.add_argument("--feedback-rate", type=float, default=0.15,
                        help="share of CDS Hooks decisions that get feedback")
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--append", action="store_true", help="add to an existing log")
    parser.add_argument("--ruleset-version", default=None,
                        help="evaluate every decision under this version (default: the one "
                             "in force at each simulated time)")
    args = parser.parse_args(argv)
    if args.database.resolve().is_relative_to((PROJECT_ROOT / "db").resolve()):
        raise SystemExit("refusing to write synthetic decisions into the project's db/")
    print(generate(args.database, args.count, batch=args.batch, days=args.days,
                   feedback_rate=args.feedback_rate, seed=args.seed, append=args.append,
                   ruleset_version=args.ruleset_version))


if __name__ == "__main__":
    main()
