"""RxNorm ingredient codes for the 23 medication columns, and the filler formulary.

Verification (see CONTRACT.md): metformin 6809, glyburide 4815, glimepiride 25789,
glipizide 4821, chlorpropamide 2404 and rosiglitazone 84108 were checked against the
CPIC drug table (cpicpgx/cpic-schema drug.sql, cpicpgx/cpic-data db/drug.sql: RxNorm
ingredient ids). The other ten come from RxNorm as recalled and are still NOT verified
against an authoritative table: repaglinide 73044, nateglinide 274332, acetohexamide
173, tolbutamide 10635, pioglitazone 33738, acarbose 16681, miglitol 30009,
troglitazone 72610, tolazamide 10633, insulin 5856. A search of the stored public
corpora (CPIC, OHDSI/FHIR value sets, RxNav/NLM pages, drug-mapping code) found no
RxNorm/NLM/CPIC/OMOP/VSAC source for them; only third-party code agrees (an OMOP
diabetes-drug exclusion list holds all nine oral codes, without names; hand-made
name->RXCUI tables pair pioglitazone 33738 and insulin 5856), so none was changed.
A second search for issue 13 (public code, DailyMed/NDC pages, VSAC/CPG value sets,
Synthea's modules: SCD/SBD only) found no authoritative source either. Real feeds send
clinical-drug codes with a display, which CLINICAL_DRUGS and SYNONYMS read without
these. A third search (2026-12-02) found name-paired secondary sources for all ten and
none contradicting: domeo/DomeoClient Mddi.java (a drug-interaction table: repaglinide
73044, tolbutamide 10635, acarbose 16681, insulin 5856 as "Active Ingredient") and an
OMOP SQL of the eMERGE/PheKB type 2 diabetes algorithm (each oral code commented with its
name). These are corroboration, not NLM: TTY=IN and active status are still unchecked
(acetohexamide, troglitazone, tolazamide and tolbutamide products are discontinued), so
the codes stay marked; check them against RxNav (TTY=IN) before production use.
``examide`` and ``citoglipton`` name no drug in RxNorm (the dataset never records them
as given); they get project codes.
"""

from __future__ import annotations

from typing import Final

from fhir_mappings.codes.project_codesystems import MEDICATION_SYSTEM
from readmit_core.features import MEDICATION_COLUMNS

RXNORM_SYSTEM: Final = "http://www.nlm.nih.gov/research/umls/rxnorm"

# Single-ingredient columns -> RxNorm ingredient (IN) code.
INGREDIENT: Final[dict[str, str]] = {
    "metformin": "6809",  # verified: CPIC drug table
    "repaglinide": "73044",  # UNVERIFIED by NLM; secondary sources agree
    "nateglinide": "274332",  # UNVERIFIED by NLM; secondary sources agree
    "chlorpropamide": "2404",  # verified: CPIC drug table
    "glimepiride": "25789",  # verified: CPIC drug table
    "acetohexamide": "173",  # UNVERIFIED by NLM; secondary sources agree
    "glipizide": "4821",  # verified: CPIC drug table
    "glyburide": "4815",  # verified: CPIC drug table (as glibenclamide)
    "tolbutamide": "10635",  # UNVERIFIED by NLM; secondary sources agree
    "pioglitazone": "33738",  # UNVERIFIED by NLM; secondary sources agree
    "rosiglitazone": "84108",  # verified: CPIC drug table
    "acarbose": "16681",  # UNVERIFIED by NLM; secondary sources agree
    "miglitol": "30009",  # UNVERIFIED by NLM; secondary sources agree
    "troglitazone": "72610",  # UNVERIFIED by NLM; secondary sources agree
    "tolazamide": "10633",  # UNVERIFIED by NLM; secondary sources agree
    "insulin": "5856",  # UNVERIFIED by NLM; secondary sources agree
}
# Columns without an RxNorm concept: project codes (system MEDICATION_SYSTEM).
PROJECT_ONLY: Final = ("examide", "citoglipton")

# Combination columns -> their two ingredient columns (a Medication with two ingredients).
COMBINATIONS: Final[dict[str, tuple[str, str]]] = {
    "glyburide-metformin": ("glyburide", "metformin"),
    "glipizide-metformin": ("glipizide", "metformin"),
    "glimepiride-pioglitazone": ("glimepiride", "pioglitazone"),
    "metformin-rosiglitazone": ("metformin", "rosiglitazone"),
    "metformin-pioglitazone": ("metformin", "pioglitazone"),
}

# Ingredient-code set -> column (combinations are keyed by their two codes).
COLUMN_BY_INGREDIENTS: Final[dict[frozenset[str], str]] = {
    **{frozenset({code}): col for col, code in INGREDIENT.items()},
    **{frozenset({INGREDIENT[a], INGREDIENT[b]}): col for col, (a, b) in COMBINATIONS.items()},
}
# RxNorm clinical drugs and packs (TTY SCD, SBD, GPCK, BPCK) -> column, for codings that
# carry no ingredient (and maybe no display). Curated from the conformance corpus and
# Synthea's diabetes medication module (synthetichealth/synthea
# src/main/resources/modules/metabolic_syndrome/medications.json @ 38f24e67, which is
# where the Synthea records of tests/fhir_corpus get them). Other clinical drugs are
# recognised by the ingredient name in their display (SYNONYMS).
CLINICAL_DRUGS: Final[dict[str, str]] = {
    "860975": "metformin",  # SCD 24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet
    "106892": "insulin",  # SBD insulin isophane 70 UNT/ML / regular insulin 30 UNT/ML [Humulin]
    "865098": "insulin",  # SBD Insulin Lispro 100 UNT/ML Injectable Solution [Humalog]
}
# Name fragments recognised in text/display when no ingredient code is given (e.g. a
# clinical-drug code "metformin hydrochloride 500 MG Oral Tablet").
SYNONYMS: Final[dict[str, str]] = {
    "glibenclamide": "glyburide",
    "insulin": "insulin",
    **{col: col for col in INGREDIENT},
}

# Doses the synthesizer writes (value, UCUM unit, times per day) for the baseline regimen.
BASE_DOSE: Final[dict[str, tuple[float, str, int]]] = {
    "metformin": (500.0, "mg", 2), "repaglinide": (1.0, "mg", 3), "nateglinide": (60.0, "mg", 3),
    "chlorpropamide": (250.0, "mg", 1), "glimepiride": (2.0, "mg", 1),
    "acetohexamide": (250.0, "mg", 1), "glipizide": (5.0, "mg", 1), "glyburide": (5.0, "mg", 1),
    "tolbutamide": (500.0, "mg", 2), "pioglitazone": (15.0, "mg", 1),
    "rosiglitazone": (4.0, "mg", 1), "acarbose": (25.0, "mg", 3), "miglitol": (25.0, "mg", 3),
    "troglitazone": (200.0, "mg", 1), "tolazamide": (100.0, "mg", 1),
    "examide": (1.0, "{tbl}", 1), "citoglipton": (1.0, "{tbl}", 1), "insulin": (10.0, "[IU]", 2),
    "glyburide-metformin": (1.0, "{tbl}", 2), "glipizide-metformin": (1.0, "{tbl}", 2),
    "glimepiride-pioglitazone": (1.0, "{tbl}", 1), "metformin-rosiglitazone": (1.0, "{tbl}", 2),
    "metformin-pioglitazone": (1.0, "{tbl}", 2),
}  # fmt: skip

# Other (non-diabetes) inpatient drugs for num_medications: RxNorm ingredient codes
# checked against the CPIC drug table (cpicpgx/cpic-schema).
FILLER_DRUGS: Final = (
    ("1191", "aspirin"), ("83367", "atorvastatin"), ("4603", "furosemide"),
    ("6918", "metoprolol"), ("20352", "carvedilol"), ("5470", "hydralazine"),
    ("5487", "hydrochlorothiazide"), ("7646", "omeprazole"), ("26225", "ondansetron"),
    ("40790", "pantoprazole"), ("7052", "morphine"), ("11289", "warfarin"),
    ("36567", "simvastatin"), ("32968", "clopidogrel"), ("3407", "digoxin"),
    ("9997", "spironolactone"), ("10689", "tramadol"), ("6387", "lidocaine"),
    ("82122", "levofloxacin"), ("2551", "ciprofloxacin"), ("7804", "oxycodone"),
    ("4337", "fentanyl"), ("6960", "midazolam"), ("5093", "haloperidol"),
    ("6915", "metoclopramide"), ("36437", "sertraline"), ("2556", "citalopram"),
    ("321988", "escitalopram"), ("4493", "fluoxetine"), ("32937", "paroxetine"),
    ("15996", "mirtazapine"), ("61381", "olanzapine"), ("35636", "risperidone"),
    ("519", "allopurinol"), ("704", "amitriptyline"), ("3322", "diazepam"),
    ("77492", "tamsulosin"), ("42463", "pravastatin"), ("301542", "rosuvastatin"),
    ("435", "albuterol"), ("69120", "tiotropium"), ("19831", "budesonide"),
    ("50121", "fluticasone propionate"), ("36117", "salmeterol"), ("17128", "lansoprazole"),
    ("283742", "esomeprazole"), ("6813", "methadone"), ("7242", "naloxone"),
    ("7407", "nicotine"), ("7454", "nitrofurantoin"), ("6058", "isosorbide dinitrate"),
    ("8787", "propranolol"), ("8183", "phenytoin"), ("11118", "valproic acid"),
    ("28439", "lamotrigine"), ("2002", "carbamazepine"), ("6851", "methotrexate"),
    ("3008", "cyclosporine"), ("42316", "tacrolimus"), ("1998", "captopril"),
    ("135447", "donepezil"), ("72625", "duloxetine"), ("39786", "venlafaxine"),
    ("140587", "celecoxib"), ("3355", "diclofenac"), ("2670", "codeine"),
    ("4053", "erythromycin"), ("139462", "moxifloxacin"), ("6038", "isoniazid"),
    ("37801", "terbinafine"), ("42347", "bupropion"), ("10600", "timolol"),
    ("10759", "triamcinolone"), ("1151", "vitamin c"), ("6835", "methimazole"),
    ("8794", "propylthiouracil"), ("7531", "nortriptyline"), ("3638", "doxepin"),
    ("7781", "oxazepam"), ("9068", "quinidine"), ("8698", "probenecid"),
    ("4441", "flecainide"), ("8754", "propafenone"), ("2101", "carisoprodol"),
    ("7243", "naltrexone"),
)  # fmt: skip


def medication_codings(column: str) -> list[dict[str, str]]:
    """Codings of a single-ingredient (or project-only) medication column."""
    if column in INGREDIENT:
        return [{"system": RXNORM_SYSTEM, "code": INGREDIENT[column], "display": column}]
    return [{"system": MEDICATION_SYSTEM, "code": column, "display": column}]


assert set(INGREDIENT) | set(PROJECT_ONLY) | set(COMBINATIONS) == set(MEDICATION_COLUMNS)
assert len({c for c, _ in FILLER_DRUGS}) == len(FILLER_DRUGS) >= 81
