"""Benchmark the decision engine: µs per full evaluation (with counterfactuals).

Usage: .venv/bin/python scripts/bench_engine.py [--rules rules] [--rounds 3000]
Prints median and p99 per request kind and overall; runs in a few seconds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from referral_api.clinical.engine import evaluate
from referral_api.clinical.versions import load_registry


def _request(region: str, age: int, weeks: float, findings: list[str], **extra: object) -> dict:
    req = {
        "patient": {"age": age},
        "region": region,
        "symptom_duration_weeks": weeks,
        "conservative_care_weeks": extra.pop("care", 0),
        "intervention_candidate": extra.pop("candidate", False),
        "findings": findings,
        "contraindications": extra.pop("contraindications", []),
    }
    req.update(extra)
    return req


MIX = {
    "lumbar uncomplicated": _request("lumbar", 40, 2, []),
    "lumbar cauda equina": _request("lumbar", 45, 1, ["urinary_retention", "radiculopathy"]),
    "lumbar cancer + deficit, MR unsafe": _request(
        "lumbar", 66, 6, ["history_of_cancer", "neurologic_deficit", "night_pain"],
        contraindications=["mr_unsafe_implant", "pregnancy"], egfr=25.0,
    ),
    "lumbar surgical candidate": _request(
        "lumbar", 50, 10, ["radiculopathy"], care=8, candidate=True
    ),
    "thoracic fracture risk": _request("thoracic", 75, 3, ["osteoporosis"]),
    "cervical trauma": _request("cervical", 70, 0, ["minor_trauma", "midline_cervical_tenderness"]),
    "cervical neck pain": _request("cervical", 35, 20, []),
    "cervical myelopathy, child": _request("cervical", 12, 2, ["myelopathy_signs"]),
}


def main() -> None:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rules", default="rules")
    parser.add_argument("--rounds", type=int, default=3000)
    args = parser.parse_args()
    registry = load_registry(Path(args.rules))
    ruleset = registry.versions()[-1]
    vocabulary = registry.vocabulary
    for request in MIX.values():  # warm-up
        evaluate(request, ruleset, vocabulary)
    print(f"rule set {ruleset.version}, {args.rounds} rounds per request kind")
    print("cold: counterfactual cache cleared before every call (every counterfactual computed);")
    print("warm: the same combination of findings seen before (the memoised counterfactuals).")
    print(f"{'request':40} {'cold median':>11} {'cold p99':>9} {'warm median':>11} "
          f"{'would_change_if':>16}")
    totals: dict[str, list[float]] = {"cold": [], "warm": []}
    caches = [rules.counterfactual_cache for rules in ruleset.regions.values()]
    clock = time.perf_counter_ns
    for name, request in MIX.items():
        samples: dict[str, list[float]] = {"cold": [], "warm": []}
        for _ in range(args.rounds):
            for cache in caches:
                cache.clear()
            start = clock()
            result = evaluate(request, ruleset, vocabulary)
            samples["cold"].append((clock() - start) / 1000)
            start = clock()
            evaluate(request, ruleset, vocabulary)
            samples["warm"].append((clock() - start) / 1000)
        for kind, values in samples.items():
            values.sort()
            totals[kind].extend(values)
        cold = samples["cold"]
        print(f"{name:40} {statistics.median(cold):11.1f} {_p99(cold):9.1f} "
              f"{statistics.median(samples['warm']):11.1f} {len(result['would_change_if']):16d}")
    for values in totals.values():
        values.sort()
    print(f"{'ALL (mix)':40} {statistics.median(totals['cold']):11.1f} "
          f"{_p99(totals['cold']):9.1f} {statistics.median(totals['warm']):11.1f}")


def _p99(sorted_samples: list[float]) -> float:
    return sorted_samples[int(len(sorted_samples) * 0.99) - 1]

if __name__ == "__main__":
    main()
