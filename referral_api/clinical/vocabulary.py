"""The binding vocabulary: findings, contraindications and procedures.

Pure module: no Flask, no database. The data file is the source of truth; this module only
gives it types, checks its shape and answers code look-ups (CPT, LOINC) for the CDS Hooks layer.

Two formats are read. v1 (``rules/vocabulary.yaml``, hashed into 2026.1.0 and therefore
frozen) and v2 (``format: 2``, a version directory's own ``vocabulary.yaml``, first used by
2026.2.0; ``vocabulary-2026.2.0-delta.md`` §1): v2 adds per finding ``icd10_exclude``,
``recency_days``, ``red_flag``, ``deprecated``, ``replaced_by``, the clinical form groups, and
per procedure ``site`` and ``cds_hooks_trigger``. Every attribute exists for both formats (v1
gets the defaults), so callers need not ask which format they hold; ``to_json`` shows the v2
attributes only for a v2 vocabulary, so the v1 document served for 2026.1.0 is unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from referral_api.enums import REGIONS

FINDING_GROUPS = ("red_flags", "neurological", "trauma", "history")
#: The v2 groups: the clinical groups of the form (delta §8.7), in display order.
FINDING_GROUPS_V2 = ("cauda_equina", "neurological", "trauma", "infection", "cancer", "history",
                     "imaging")
SITES = ("spine", "sacroiliac")
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
    #: ICD-10-CM prefixes that never map, even when an include prefix matches (v2).
    icd10_exclude: tuple[str, ...] = ()
    #: A FHIR Condition counts only when dated within this many days (v2; None: no window).
    recency_days: int | None = None
    #: Listed as "not assessed" over CDS Hooks when not found (v2; v1 findings default true).
    red_flag: bool = True
    deprecated: bool = False
    replaced_by: tuple[str, ...] = ()

    @property
    def derivable(self) -> bool:
        """True when standard codes map to the finding (it can be found in a FHIR record)."""
        return bool(self.icd10 or self.snomed)


@dataclass(frozen=True)
class Contraindication:
    """A patient factor that modifies the safety of imaging (never the clinical rating)."""

    code: str
    label: str
    definition: str
    icd10: tuple[str, ...]
    snomed: tuple[str, ...]
    icd10_exclude: tuple[str, ...] = ()
    deprecated: bool = False
    replaced_by: tuple[str, ...] = ()


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
    #: ``spine`` or ``sacroiliac`` (SI-joint studies are requested in the lumbar region).
    site: str = "spine"
    #: False: an order coded with this procedure never triggers a CDS Hooks card (v2).
    cds_hooks_trigger: bool = True

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

    @property
    def uses_iv_iodinated(self) -> bool:
        """A CT with IV iodinated contrast (with, or without and with); not CT myelography."""
        return self.modality == "ct" and self.contrast in ("with", "without_and_with")

    @property
    def is_intrathecal(self) -> bool:
        """CT myelography: contrast given intrathecally (no renal or metformin advice)."""
        return self.modality == "ct_myelography"

    @property
    def imaging_region(self) -> str:
        """The anatomical area: the spinal region, or ``sacroiliac`` for SI-joint studies."""
        return "sacroiliac" if self.site == "sacroiliac" else self.region

    def to_json(self, v2: bool = False) -> dict[str, Any]:
        """JSON form used by GET /v1/vocabulary (``v2``: with site and cds_hooks_trigger)."""
        out: dict[str, Any] = {
            "code": self.code,
            "label": self.label,
            "region": self.region,
            "modality": self.modality,
            "contrast": self.contrast,
            "cpt": list(self.cpt),
            "cpt_aliases": list(self.cpt_aliases),
            "loinc": list(self.loinc),
        }
        if v2:
            out["site"] = self.site
            out["cds_hooks_trigger"] = self.cds_hooks_trigger
        return out


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
        format: int = 1,
    ) -> None:
        #: 1 (rules/vocabulary.yaml) or 2 (a version's own file, delta §1).
        self.format = format
        self.finding_groups = FINDING_GROUPS_V2 if format >= 2 else FINDING_GROUPS
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

    def red_flags(self) -> list[Finding]:
        """The red-flag findings, in vocabulary order (criteria-2026.2.0 §10.2)."""
        return [f for f in self.findings.values() if f.red_flag]

    def recency_days(self, code: str) -> int | None:
        """The FHIR recency window of a finding in days (v1: the CES findings' 4 weeks)."""
        finding = self.findings.get(code)
        if finding is not None and finding.recency_days is not None:
            return finding.recency_days
        if code in self.recent_only_findings:
            return 7 * self.recent_window_weeks
        return None

    def procedures_of_region(self, region: str) -> list[Procedure]:
        """The procedures of one region, in file order."""
        return [p for p in self.procedures.values() if p.region == region]

    def to_json(self) -> dict[str, Any]:
        """JSON form served at GET /v1/vocabulary (v2 attributes only for a v2 vocabulary)."""
        v2 = self.format >= 2

        def finding(f: Finding) -> dict[str, Any]:
            out: dict[str, Any] = {
                "code": f.code,
                "label": f.label,
                "definition": f.definition,
                "group": f.group,
                "icd10": list(f.icd10),
                "snomed": list(f.snomed),
                "recent_only": f.code in self.recent_only_findings,
            }
            if v2:
                out.update(icd10_exclude=list(f.icd10_exclude), recency_days=f.recency_days,
                           red_flag=f.red_flag, derivable=f.derivable,
                           deprecated=f.deprecated, replaced_by=list(f.replaced_by))
            return out

        def contraindication(c: Contraindication) -> dict[str, Any]:
            out: dict[str, Any] = {
                "code": c.code,
                "label": c.label,
                "definition": c.definition,
                "icd10": list(c.icd10),
                "snomed": list(c.snomed),
            }
            if v2:
                out.update(icd10_exclude=list(c.icd10_exclude), deprecated=c.deprecated,
                           replaced_by=list(c.replaced_by))
            return out

        head: dict[str, Any] = {"format": 2} if v2 else {}
        return {
            **head,
            "findings": [finding(f) for f in self.findings.values()],
            "contraindications": [contraindication(c) for c in self.contraindications.values()],
            "procedures": [p.to_json(v2) for p in self.procedures.values()],
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


_V1_FINDING_KEYS = {"label", "definition", "group", "icd10", "snomed"}
_V2_FINDING_KEYS = _V1_FINDING_KEYS | {"icd10_exclude", "recency_days", "red_flag", "deprecated",
                                       "replaced_by"}
_V1_CONTRA_KEYS = {"label", "definition", "icd10", "snomed"}
_V2_CONTRA_KEYS = _V1_CONTRA_KEYS | {"icd10_exclude", "deprecated", "replaced_by"}
_V1_PROCEDURE_KEYS = {"label", "region", "modality", "contrast", "cpt", "cpt_aliases", "loinc"}
_V2_PROCEDURE_KEYS = _V1_PROCEDURE_KEYS | {"site", "cds_hooks_trigger"}


def _keys(entry: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(str(k) for k in entry if k not in allowed)
    if unknown:
        raise VocabularyError(f"{where}: unknown key(s) {', '.join(unknown)}")


def _flag(entry: Mapping[str, Any], key: str, default: bool, where: str) -> bool:
    value = entry.get(key, default)
    if not isinstance(value, bool):
        raise VocabularyError(f"{where}: '{key}' must be true or false")
    return value


def _deprecation(entry: Mapping[str, Any], where: str) -> tuple[bool, tuple[str, ...]]:
    deprecated = _flag(entry, "deprecated", False, where)
    replaced_by = _strings(entry.get("replaced_by"), f"{where}.replaced_by")
    if replaced_by and not deprecated:
        raise VocabularyError(f"{where}: 'replaced_by' needs 'deprecated: true'")
    return deprecated, replaced_by


def parse_vocabulary(data: Any, source: str = "vocabulary.yaml") -> Vocabulary:
    """Build a Vocabulary from the parsed YAML document (format 1 or 2), checking every field."""
    doc = _mapping(data, source)
    fmt = doc.get("format", 1)
    if fmt not in (1, 2):
        raise VocabularyError(f"{source}: format must be 1 or 2")
    v2 = fmt == 2
    groups = FINDING_GROUPS_V2 if v2 else FINDING_GROUPS
    findings: dict[str, Finding] = {}
    for code, entry in _mapping(doc.get("findings"), f"{source}: findings").items():
        where = f"{source}: findings.{code}"
        entry = _mapping(entry, where)
        if v2:
            _keys(entry, _V2_FINDING_KEYS, where)
        group = _text(entry, "group", where)
        if group not in groups:
            raise VocabularyError(f"{where}: group must be one of {', '.join(groups)}")
        recency = entry.get("recency_days")
        if recency is not None and (
            isinstance(recency, bool) or not isinstance(recency, int) or recency <= 0
        ):
            raise VocabularyError(f"{where}: recency_days must be a positive integer")
        deprecated, replaced_by = _deprecation(entry, where)
        findings[code] = Finding(
            code=code,
            label=_text(entry, "label", where),
            definition=_text(entry, "definition", where),
            group=group,
            icd10=_strings(entry.get("icd10"), f"{where}.icd10"),
            snomed=_strings(entry.get("snomed"), f"{where}.snomed"),
            icd10_exclude=_strings(entry.get("icd10_exclude"), f"{where}.icd10_exclude"),
            recency_days=recency,
            red_flag=_flag(entry, "red_flag", True, where),
            deprecated=deprecated,
            replaced_by=replaced_by,
        )
    contraindications: dict[str, Contraindication] = {}
    for code, entry in _mapping(
        doc.get("contraindications"), f"{source}: contraindications"
    ).items():
        where = f"{source}: contraindications.{code}"
        entry = _mapping(entry, where)
        if v2:
            _keys(entry, _V2_CONTRA_KEYS, where)
        deprecated, replaced_by = _deprecation(entry, where)
        contraindications[code] = Contraindication(
            code=code,
            label=_text(entry, "label", where),
            definition=_text(entry, "definition", where),
            icd10=_strings(entry.get("icd10"), f"{where}.icd10"),
            snomed=_strings(entry.get("snomed"), f"{where}.snomed"),
            icd10_exclude=_strings(entry.get("icd10_exclude"), f"{where}.icd10_exclude"),
            deprecated=deprecated,
            replaced_by=replaced_by,
        )
    procedures: dict[str, Procedure] = {}
    for code, entry in _mapping(doc.get("procedures"), f"{source}: procedures").items():
        where = f"{source}: procedures.{code}"
        entry = _mapping(entry, where)
        if v2:
            _keys(entry, _V2_PROCEDURE_KEYS, where)
        site = entry.get("site", "spine")
        if site not in SITES:
            raise VocabularyError(f"{where}: site must be one of {', '.join(SITES)}")
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
            site=site,
            cds_hooks_trigger=_flag(entry, "cds_hooks_trigger", True, where),
        )
    for region in REGIONS:
        if f"mri_{region}_without_contrast" not in procedures:
            raise VocabularyError(f"{source}: procedures lack mri_{region}_without_contrast")
    pain = _mapping(doc.get("spine_pain_codes"), f"{source}: spine_pain_codes")
    ces = _mapping(doc.get("cauda_equina_diagnosis"), f"{source}: cauda_equina_diagnosis")
    ces_findings = _strings(ces.get("findings"), f"{source}: cauda_equina_diagnosis.findings")
    if v2:
        # recency_days replaces the v1 pair; kept as attributes for v1-era callers.
        for key in ("recent_only_findings", "recent_window_weeks"):
            if key in doc:
                raise VocabularyError(f"{source}: '{key}' is v1 only (use recency_days)")
        recent = tuple(c for c, f in findings.items() if f.recency_days is not None)
        weeks: Any = 4
    else:
        recent = _strings(doc.get("recent_only_findings"), f"{source}: recent_only_findings")
        weeks = doc.get("recent_window_weeks")
    for code in (*ces_findings, *recent):
        if code not in findings:
            raise VocabularyError(f"{source}: unknown finding {code!r}")
    if not isinstance(weeks, int) or isinstance(weeks, bool) or weeks <= 0:
        raise VocabularyError(f"{source}: recent_window_weeks must be a positive integer")
    for kind, table in (("findings", findings), ("contraindications", contraindications)):
        for item in table.values():
            for other in item.replaced_by:
                if other not in table:
                    raise VocabularyError(
                        f"{source}: {kind}.{item.code}.replaced_by names unknown {other!r}")
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
        format=fmt,
    )


def load_vocabulary(path: Path) -> Vocabulary:
    """Load and check a vocabulary file (rules/vocabulary.yaml, or a version's own)."""
    try:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available
        data = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=loader)  # noqa: S506
    except (OSError, yaml.YAMLError) as exc:
        raise VocabularyError(f"{Path(path).name}: cannot be read: {exc}") from exc
    return parse_vocabulary(data, Path(path).name)
