"""The binding vocabulary: findings, contraindications and procedures (rules/vocabulary.yaml).

Pure module: no Flask, no database. The data file is the source of truth; this module only
gives it types, checks its shape and answers code look-ups (CPT, LOINC) for the CDS Hooks layer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from referral_api.enums import REGIONS

FINDING_GROUPS = ("red_flags", "neurological", "trauma", "history")
MODALITIES = ("mri", "ct", "ct_myelography", "xray")
CONTRASTS = ("without", "with", "without_and_with")

CPT_SYSTEMS = frozenset({"cpt", "http://www.ama-assn.org/go/cpt"})
LOINC_SYSTEMS = frozenset({"loinc", "http://loinc.org"})
# The intrathecal injection code that, with a region's CT-with-contrast code, makes a CT myelogram.
MYELOGRAPHY_INJECTION_CPT = "62284"


class VocabularyError(ValueError):
    """The vocabulary file is missing, malformed or inconsistent."""


@dataclass(frozen=True)
class Finding:
    """A clinical finding the request may list as present."""

    code: str
    label: str
    definition: str
    group: str
    icd10: tuple[str, ...]
    snomed: tuple[str, ...]


@dataclass(frozen=True)
class Contraindication:
    """A patient factor that modifies the safety of imaging (never the clinical rating)."""

    code: str
    label: str
    definition: str
    icd10: tuple[str, ...]
    snomed: tuple[str, ...]


@dataclass(frozen=True)
class Procedure:
    """An imaging study of one spinal region."""

    code: str
    label: str
    region: str
    modality: str
    contrast: str | None
    cpt: tuple[str, ...]
    cpt_aliases: tuple[str, ...]
    loinc: tuple[str, ...]

    @property
    def is_mri(self) -> bool:
        """True for every MRI, with or without contrast."""
        return self.modality == "mri"

    @property
    def uses_contrast(self) -> bool:
        """MRI or CT with (or without and with) contrast, and CT myelography (intrathecal)."""
        if self.modality == "ct_myelography":
            return True
        return self.modality in ("mri", "ct") and self.contrast in ("with", "without_and_with")

    @property
    def uses_ionising_radiation(self) -> bool:
        """Radiography, CT and CT myelography expose the patient to ionising radiation."""
        return self.modality in ("xray", "ct", "ct_myelography")

    @property
    def uses_gadolinium(self) -> bool:
        """An MRI with a gadolinium-based agent (with, or without and with, contrast)."""
        return self.modality == "mri" and self.contrast in ("with", "without_and_with")

    def to_json(self) -> dict[str, Any]:
        """JSON form used by GET /v1/vocabulary."""
        return {
            "code": self.code,
            "label": self.label,
            "region": self.region,
            "modality": self.modality,
            "contrast": self.contrast,
            "cpt": list(self.cpt),
            "cpt_aliases": list(self.cpt_aliases),
            "loinc": list(self.loinc),
        }


class Vocabulary:
    """Every code the API accepts, in the order of the data file."""

    def __init__(
        self,
        *,
        findings: dict[str, Finding],
        contraindications: dict[str, Contraindication],
        procedures: dict[str, Procedure],
        spine_pain_codes: dict[str, tuple[str, ...]],
        cauda_equina_diagnosis_codes: dict[str, tuple[str, ...]],
        cauda_equina_findings: tuple[str, ...],
        recent_only_findings: frozenset[str],
        recent_window_weeks: int,
        egfr_loinc: tuple[str, ...],
    ) -> None:
        self.findings = findings
        self.contraindications = contraindications
        self.procedures = procedures
        self.spine_pain_codes = spine_pain_codes
        self.cauda_equina_diagnosis_codes = cauda_equina_diagnosis_codes
        self.cauda_equina_findings = cauda_equina_findings
        self.recent_only_findings = recent_only_findings
        self.recent_window_weeks = recent_window_weeks
        self.egfr_loinc = egfr_loinc
        self._cpt_index: dict[str, Procedure] = {}
        self._ctm_index: dict[str, Procedure] = {}
        self._loinc_index: dict[str, Procedure] = {}
        for proc in procedures.values():
            if proc.modality == "ct_myelography":
                # A CT myelogram is the pair (62284, region CT-with code); the region code alone
                # is that region's CT with contrast, so it is indexed separately.
                for code in proc.cpt:
                    if code != MYELOGRAPHY_INJECTION_CPT:
                        self._ctm_index[code] = proc
                continue
            for code in (*proc.cpt, *proc.cpt_aliases):
                self._cpt_index[code] = proc
            for code in proc.loinc:
                self._loinc_index[code] = proc

    def procedure_for_code(self, system: str, code: str) -> Procedure | None:
        """The procedure a single CPT or LOINC code denotes, or None when it is not spine imaging.

        `system` is "cpt"/"loinc" or the FHIR system URI. A CPT code is a primary code or an
        alias. A CT myelogram is coded as a pair: pass "62284+72132" (or "62284,72132"); the
        non-62284 code alone is the region's CT with contrast, and 62284 alone names no region.
        """
        system = system.strip().lower().rstrip("/")
        code = code.strip()
        if system in CPT_SYSTEMS:
            parts = [p.strip() for p in code.replace(",", "+").split("+") if p.strip()]
            if len(parts) == 2 and MYELOGRAPHY_INJECTION_CPT in parts:
                other = parts[0] if parts[1] == MYELOGRAPHY_INJECTION_CPT else parts[1]
                return self._ctm_index.get(other)
            if len(parts) == 1:
                return self._cpt_index.get(parts[0])
            return None
        if system in LOINC_SYSTEMS:
            return self._loinc_index.get(code)
        return None

    def procedure_for_codes(self, codings: Iterable[tuple[str, str]]) -> Procedure | None:
        """The procedure an order's codings denote together: (system, code) pairs.

        CPT 62284 together with a region's CT-with-contrast code is that region's CT myelogram;
        otherwise the first coding that names a spine study wins.
        """
        pairs = [(s.strip().lower().rstrip("/"), c.strip()) for s, c in codings]
        cpt_codes = [c for s, c in pairs if s in CPT_SYSTEMS]
        if MYELOGRAPHY_INJECTION_CPT in cpt_codes:
            for code in cpt_codes:
                if code in self._ctm_index:
                    return self._ctm_index[code]
        for system, code in pairs:
            proc = self.procedure_for_code(system, code)
            if proc is not None:
                return proc
        return None

    def default_procedure(self, region: str) -> Procedure:
        """MRI of the region without contrast: the study assumed when none is requested."""
        return self.procedures[f"mri_{region}_without_contrast"]

    def procedures_of_region(self, region: str) -> list[Procedure]:
        """The procedures of one region, in file order."""
        return [p for p in self.procedures.values() if p.region == region]

    def to_json(self) -> dict[str, Any]:
        """JSON form served at GET /v1/vocabulary."""
        return {
            "findings": [
                {
                    "code": f.code,
                    "label": f.label,
                    "definition": f.definition,
                    "group": f.group,
                    "icd10": list(f.icd10),
                    "snomed": list(f.snomed),
                    "recent_only": f.code in self.recent_only_findings,
                }
                for f in self.findings.values()
            ],
            "contraindications": [
                {
                    "code": c.code,
                    "label": c.label,
                    "definition": c.definition,
                    "icd10": list(c.icd10),
                    "snomed": list(c.snomed),
                }
                for c in self.contraindications.values()
            ],
            "procedures": [p.to_json() for p in self.procedures.values()],
            "spine_pain_codes": {k: list(v) for k, v in self.spine_pain_codes.items()},
            "cauda_equina_diagnosis": {
                **{k: list(v) for k, v in self.cauda_equina_diagnosis_codes.items()},
                "findings": list(self.cauda_equina_findings),
            },
            "recent_only_findings": [c for c in self.findings if c in self.recent_only_findings],
            "recent_window_weeks": self.recent_window_weeks,
            "egfr_loinc": list(self.egfr_loinc),
        }


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise VocabularyError(f"{where}: expected a list of non-empty strings")
    return tuple(value)


def _text(entry: Mapping[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise VocabularyError(f"{where}: '{key}' must be a non-empty string")
    return value


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise VocabularyError(f"{where}: expected a mapping")
    return value


def parse_vocabulary(data: Any, source: str = "vocabulary.yaml") -> Vocabulary:
    """Build a Vocabulary from the parsed YAML document, checking every field."""
    doc = _mapping(data, source)
    findings: dict[str, Finding] = {}
    for code, entry in _mapping(doc.get("findings"), f"{source}: findings").items():
        where = f"{source}: findings.{code}"
        entry = _mapping(entry, where)
        group = _text(entry, "group", where)
        if group not in FINDING_GROUPS:
            raise VocabularyError(f"{where}: group must be one of {', '.join(FINDING_GROUPS)}")
        findings[code] = Finding(
            code=code,
            label=_text(entry, "label", where),
            definition=_text(entry, "definition", where),
            group=group,
            icd10=_strings(entry.get("icd10"), f"{where}.icd10"),
            snomed=_strings(entry.get("snomed"), f"{where}.snomed"),
        )
    contraindications: dict[str, Contraindication] = {}
    for code, entry in _mapping(
        doc.get("contraindications"), f"{source}: contraindications"
    ).items():
        where = f"{source}: contraindications.{code}"
        entry = _mapping(entry, where)
        contraindications[code] = Contraindication(
            code=code,
            label=_text(entry, "label", where),
            definition=_text(entry, "definition", where),
            icd10=_strings(entry.get("icd10"), f"{where}.icd10"),
            snomed=_strings(entry.get("snomed"), f"{where}.snomed"),
        )
    procedures: dict[str, Procedure] = {}
    for code, entry in _mapping(doc.get("procedures"), f"{source}: procedures").items():
        where = f"{source}: procedures.{code}"
        entry = _mapping(entry, where)
        region, modality = entry.get("region"), entry.get("modality")
        contrast = entry.get("contrast")
        if region not in REGIONS:
            raise VocabularyError(f"{where}: region must be one of {', '.join(REGIONS)}")
        if modality not in MODALITIES:
            raise VocabularyError(f"{where}: modality must be one of {', '.join(MODALITIES)}")
        if contrast is not None and contrast not in CONTRASTS:
            raise VocabularyError(f"{where}: contrast must be null or one of {CONTRASTS}")
        cpt = _strings(entry.get("cpt"), f"{where}.cpt")
        if not cpt:
            raise VocabularyError(f"{where}: at least one primary CPT code is required")
        procedures[code] = Procedure(
            code=code,
            label=_text(entry, "label", where),
            region=region,
            modality=modality,
            contrast=contrast,
            cpt=cpt,
            cpt_aliases=_strings(entry.get("cpt_aliases"), f"{where}.cpt_aliases"),
            loinc=_strings(entry.get("loinc"), f"{where}.loinc"),
        )
    for region in REGIONS:
        if f"mri_{region}_without_contrast" not in procedures:
            raise VocabularyError(f"{source}: procedures lack mri_{region}_without_contrast")
    pain = _mapping(doc.get("spine_pain_codes"), f"{source}: spine_pain_codes")
    ces = _mapping(doc.get("cauda_equina_diagnosis"), f"{source}: cauda_equina_diagnosis")
    ces_findings = _strings(ces.get("findings"), f"{source}: cauda_equina_diagnosis.findings")
    recent = _strings(doc.get("recent_only_findings"), f"{source}: recent_only_findings")
    for code in (*ces_findings, *recent):
        if code not in findings:
            raise VocabularyError(f"{source}: unknown finding {code!r}")
    weeks = doc.get("recent_window_weeks")
    if not isinstance(weeks, int) or isinstance(weeks, bool) or weeks <= 0:
        raise VocabularyError(f"{source}: recent_window_weeks must be a positive integer")
    return Vocabulary(
        findings=findings,
        contraindications=contraindications,
        procedures=procedures,
        spine_pain_codes={
            "icd10": _strings(pain.get("icd10"), f"{source}: spine_pain_codes.icd10"),
            "snomed": _strings(pain.get("snomed"), f"{source}: spine_pain_codes.snomed"),
        },
        cauda_equina_diagnosis_codes={
            "icd10": _strings(ces.get("icd10"), f"{source}: cauda_equina_diagnosis.icd10"),
            "snomed": _strings(ces.get("snomed"), f"{source}: cauda_equina_diagnosis.snomed"),
        },
        cauda_equina_findings=ces_findings,
        recent_only_findings=frozenset(recent),
        recent_window_weeks=weeks,
        egfr_loinc=_strings(doc.get("egfr_loinc"), f"{source}: egfr_loinc"),
    )


def load_vocabulary(path: Path) -> Vocabulary:
    """Load and check rules/vocabulary.yaml."""
    try:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available
        data = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=loader)  # noqa: S506
    except (OSError, yaml.YAMLError) as exc:
        raise VocabularyError(f"{Path(path).name}: cannot be read: {exc}") from exc
    return parse_vocabulary(data, Path(path).name)
