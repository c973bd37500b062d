"""SNOMED CT -> the ICD-9-CM code the dataset would carry (curated, concept level).

Why a curated table and not a terminology package: SNOMED CT content (and the NLM
SNOMED CT -> ICD-10-CM map) is licensed per country through SNOMED International /
the UMLS licence; no package on PyPI may ship it (``pymedtermino``, ``sct-py``,
``snomed-utils`` and ``django-snomed-ct`` all need the licensed RF2 release or a
terminology server loaded by the user). Codes alone are free to use, so this module
holds only concept ids and our own ICD-9-CM choice per concept.

Coverage rule (see CONTRACT.md): every SNOMED CT concept that occurs as a Condition
or an Encounter reason in the 37 diabetic patients of the Synthea R4 sample
(``smart-on-fhir/generated-sample-data`` R4/SYNTHEA, 525 conditions: this table maps
100 % of them) and in the conformance corpus (``tests/fhir_corpus``), plus the common
inpatient reasons of newer Synthea modules; then the unmapped concepts of the other 580
records of that sample (out of sample before this addition: 97.5 % of 4,546 conditions
mapped, 2.5 % unmapped). Each entry is the ICD-9-CM category a
coder would give the concept (dataset spelling: no leading zero, 250.xx kept), chosen
so that the literature's diagnosis group (Strack et al. 2014) is right.
A concept missing here falls back to :func:`text_code` on its display/text.
"""

from __future__ import annotations

from typing import Final

SNOMED_SYSTEM: Final = "http://snomed.info/sct"

# concept id -> ICD-9-CM (dataset spelling). Comment: the concept's preferred term.
SNOMED_TO_ICD9: Final[dict[str, str]] = {
    # --- diabetes and its complications (250.xx keeps the complication digit) -------
    "44054006": "250",  # Diabetes mellitus type 2
    "73211009": "250",  # Diabetes mellitus
    "46635009": "250.01",  # Diabetes mellitus type 1
    "368581000119106": "250.6",  # Neuropathy due to type 2 diabetes mellitus
    "127013003": "250.4",  # Diabetic renal disease
    "90781000119102": "250.4",  # Microalbuminuria due to type 2 diabetes mellitus
    "422034002": "250.5",  # Diabetic retinopathy associated with type II diabetes
    "1551000119108": "250.5",  # Nonproliferative diabetic retinopathy due to T2DM
    "1501000119109": "250.5",  # Proliferative diabetic retinopathy due to T2DM
    "97331000119101": "250.5",  # Macular edema and retinopathy due to T2DM
    "157141000119108": "250.4",  # Proteinuria due to type 2 diabetes mellitus
    # --- metabolic, endocrine, blood -------------------------------------------------
    "15777000": "790",  # Prediabetes (790.29 other abnormal glucose)
    "714628002": "790",  # Prediabetes
    "80394007": "790",  # Hyperglycemia
    "237602007": "277",  # Metabolic syndrome X (277.7)
    "302870006": "272",  # Hypertriglyceridemia (272.1)
    "55822004": "272",  # Hyperlipidemia (272.4)
    "162864005": "278",  # Body mass index 30+ - obesity (278.00)
    "408512008": "278",  # Body mass index 40+ - severely obese
    "271737000": "285",  # Anemia (285.9)
    "90560007": "274",  # Gout
    "83664006": "244",  # Idiopathic atrophic hypothyroidism
    # --- circulatory -------------------------------------------------------------------
    "38341003": "401",  # Hypertension
    "59621000": "401",  # Essential hypertension
    "53741008": "414",  # Coronary heart disease
    "414545008": "414",  # Ischemic heart disease
    "22298006": "410",  # Myocardial infarction
    "399211009": "412",  # History of myocardial infarction
    "88805009": "428",  # Chronic congestive heart failure
    "42343007": "428",  # Congestive heart failure
    "84114007": "428",  # Heart failure
    "49436004": "427",  # Atrial fibrillation (427.31)
    "410429000": "427",  # Cardiac arrest (427.5)
    "230690007": "434",  # Stroke (434.91)
    "429007001": "V12",  # History of cardiac arrest (V12.53)
    "399261000": "V45",  # History of coronary artery bypass grafting (V45.81)
    # --- respiratory -------------------------------------------------------------------
    "444814009": "461",  # Viral sinusitis (acute sinusitis)
    "75498004": "461",  # Acute bacterial sinusitis
    "36971009": "473",  # Sinusitis (473.9)
    "40055000": "473",  # Chronic sinusitis
    "195662009": "462",  # Acute viral pharyngitis
    "43878008": "34",  # Streptococcal sore throat (034.0)
    "10509002": "466",  # Acute bronchitis
    "446096008": "477",  # Perennial allergic rhinitis
    "367498001": "477",  # Seasonal allergic rhinitis
    "232353008": "477",  # Perennial allergic rhinitis with seasonal variation
    "195967001": "493",  # Asthma
    "233678006": "493",  # Childhood asthma
    "185086009": "491",  # Chronic obstructive bronchitis
    "87433001": "492",  # Pulmonary emphysema
    "13645005": "496",  # Chronic obstructive lung disease
    "233604007": "486",  # Pneumonia
    "840539006": "79",  # COVID-19 (079.89 other viral infection)
    "49727002": "786",  # Cough
    "267036007": "786",  # Dyspnea
    "29857009": "786",  # Chest pain
    # --- digestive ---------------------------------------------------------------------
    "196416002": "520",  # Impacted molars (520.6)
    "74400008": "541",  # Appendicitis
    "47693006": "540",  # Rupture of appendix (540.0)
    "51868009": "532",  # Ulcer of duodenum
    "713197008": "569",  # Recurrent rectal polyp (569.0)
    "6072007": "569",  # Bleeding from anus (569.3)
    "236077008": "787",  # Protracted diarrhea (787.91)
    "65275009": "575",  # Acute cholecystitis
    "235919008": "574",  # Cholelithiasis
    "428251008": "V45",  # History of appendectomy (V45.79 acquired absence of organ)
    # --- genitourinary, kidney, pregnancy ------------------------------------------------
    "431855005": "585",  # Chronic kidney disease stage 1
    "431856006": "585",  # Chronic kidney disease stage 2
    "433144002": "585",  # Chronic kidney disease stage 3
    "431857002": "585",  # Chronic kidney disease stage 4
    "38822007": "595",  # Cystitis
    "301011002": "599",  # Escherichia coli urinary tract infection (599.0)
    "68566005": "599",  # Urinary tract infectious disease
    "72892002": "V22",  # Normal pregnancy
    "19169002": "634",  # Miscarriage in first trimester
    "35999006": "631",  # Blighted ovum
    "79586000": "633",  # Tubal pregnancy
    "156073000": "656",  # Fetus with unknown complication
    "198992004": "642",  # Antepartum eclampsia
    "398254007": "642",  # Preeclampsia
    "442311008": "V30",  # Liveborn born in hospital
    # --- neoplasms ---------------------------------------------------------------------
    "68496003": "211",  # Polyp of colon (211.3 benign neoplasm of colon)
    "363406005": "153",  # Malignant tumor of colon
    "126906006": "185",  # Neoplasm of prostate (Synthea's prostate cancer module)
    "314994000": "198",  # Metastasis from malignant tumor of prostate
    "254837009": "174",  # Malignant neoplasm of breast
    "254637007": "162",  # Non-small cell lung cancer
    "254632001": "162",  # Small cell carcinoma of lung
    "424132000": "162",  # Non-small cell carcinoma of lung, TNM stage 1
    "67811000119102": "162",  # Primary small cell malignant neoplasm of lung, TNM stage 1
    "92691004": "233",  # Carcinoma in situ of prostate
    "162573006": "V71",  # Suspected lung cancer (V71.1 observation, suspected neoplasm)
    # --- injury and poisoning ------------------------------------------------------------
    "39848009": "847",  # Whiplash injury to neck
    "284549007": "882",  # Laceration of hand
    "283385000": "890",  # Laceration of thigh
    "283371005": "881",  # Laceration of forearm
    "370247008": "873",  # Facial laceration
    "62106007": "850",  # Concussion with no loss of consciousness
    "110030002": "850",  # Concussion injury of brain
    "307731004": "840",  # Injury of tendon of the rotator cuff of shoulder
    "444470001": "844",  # Injury of anterior cruciate ligament
    "239720000": "836",  # Tear of meniscus of knee
    "70704007": "842",  # Sprain of wrist
    "44465007": "845",  # Sprain of ankle
    "65966004": "813",  # Fracture of forearm
    "16114001": "824",  # Fracture of ankle
    "263102004": "814",  # Fracture subluxation of wrist
    "58150001": "810",  # Fracture of clavicle
    "359817006": "820",  # Closed fracture of hip
    "403190006": "949",  # First degree burn
    "403191005": "949",  # Second degree burn
    "48333001": "949",  # Burn injury
    "39065001": "941",  # Burn of ear
    "55680006": "977",  # Drug overdose (977.9)
    "284551006": "892",  # Laceration of foot
    "62564004": "850",  # Concussion with loss of consciousness
    "275272006": "854",  # Brain damage - traumatic
    "127295002": "854",  # Traumatic brain injury
    "262574004": "879",  # Bullet wound (open wound, site unspecified)
    "444448004": "844",  # Injury of medial collateral ligament of knee
    "30832001": "844",  # Rupture of patellar tendon
    "241929008": "995",  # Acute allergic reaction (995.3)
    # --- musculoskeletal ---------------------------------------------------------------
    "201834006": "715",  # Localized, primary osteoarthritis of the hand
    "239873007": "715",  # Osteoarthritis of knee
    "239872002": "715",  # Osteoarthritis of hip
    "69896004": "714",  # Rheumatoid arthritis
    "64859006": "733",  # Osteoporosis
    "443165006": "733",  # Pathological fracture due to osteoporosis (733.1)
    "122481008": "735",  # Hammer toe
    # --- nervous system, mental health, other -------------------------------------------
    "124171000119105": "346",  # Chronic intractable migraine without aura
    "128613002": "345",  # Seizure disorder
    "84757009": "345",  # Epilepsy
    "703151001": "V12",  # History of single seizure (V12.49)
    "82423001": "338",  # Chronic pain
    "698754002": "344",  # Chronic paralysis due to lesion of spinal cord
    "26929004": "331",  # Alzheimer's disease
    "230265002": "331",  # Familial Alzheimer's disease of early onset
    "192127007": "314",  # Child attention deficit disorder
    "47505003": "309",  # Posttraumatic stress disorder (309.81)
    "449868002": "305",  # Smokes tobacco daily (305.1 tobacco use disorder)
    "95417003": "729",  # Primary fibromyalgia syndrome (729.1)
    "7200002": "303",  # Alcoholism
    "5602001": "305",  # Opioid abuse (305.5)
    "247824007": "307",  # Fear of becoming fat (307.5 eating disorders)
    "445281000124101": "V60",  # Nutrition impaired due to limited access to healthful foods
    "370143000": "296",  # Major depressive disorder
    "36923009": "296",  # Major depression, single episode
    "35489007": "311",  # Depressive disorder
    "197480006": "300",  # Anxiety disorder
    "24079001": "691",  # Atopic dermatitis
    "40275004": "692",  # Contact dermatitis
    "91302008": "38",  # Sepsis (038.9)
    "65363002": "382",  # Otitis media
    "386661006": "780",  # Fever
    # --- unmapped in the STU3 Synthea sample (400 records, out of sample: 99.3 % -> 100 %)
    "85116003": "634",  # Miscarriage in second trimester
    "267253006": "655",  # Fetus with chromosomal abnormality (affecting the mother)
    "403192003": "949",  # Third degree burn
    "86849004": "E950",  # Suicidal deliberate poisoning
    "287182007": "E953",  # Attempted suicide - suffocation
    "37849005": "752",  # Congenital uterine anomaly
}  # fmt: skip

# Prediabetes / hyperglycaemia concepts: ICD-10-CM R73 "Excludes1 diabetes mellitus
# (E08-E13)", so they are dropped from a list the mapper assembles that holds diabetes.
SNOMED_PREDIABETES: Final = frozenset({"15777000", "714628002", "80394007"})

# Last fallback, on code.text/display when no code system gave a code: ordered
# (fragment, ICD-9-CM) pairs, the first fragment found in the lower-cased text wins.
# Deliberately short: only unambiguous words for the groups the model relies on.
TEXT_FALLBACK: Final[tuple[tuple[str, str], ...]] = (
    ("type 1 diabetes", "250.01"), ("diabetes mellitus type 1", "250.01"),
    ("diabetic kidney", "250.4"), ("diabetic renal", "250.4"), ("diabetic nephropathy", "250.4"),
    ("diabetic retinopathy", "250.5"), ("diabetic neuropathy", "250.6"),
    ("prediabetes", "790"), ("diabet", "250"),
    ("heart failure", "428"), ("myocardial infarction", "410"), ("atrial fibrillation", "427"),
    ("hypertension", "401"), ("coronary", "414"), ("stroke", "434"),
    ("pneumonia", "486"), ("chronic obstructive", "496"), ("copd", "496"), ("asthma", "493"),
    ("bronchitis", "466"), ("sepsis", "38"), ("urinary tract infection", "599"),
    ("chronic kidney disease", "585"), ("cellulitis", "682"), ("anemia", "285"),
    ("anaemia", "285"), ("hyperlipid", "272"), ("obes", "278"), ("fracture", "829"),
    ("osteoarthritis", "715"), ("depress", "311"), ("pregnan", "V22"),
    ("malignant", "199"), ("cancer", "199"), ("carcinoma", "199"),
)  # fmt: skip


def snomed_to_icd9(code: str) -> str | None:
    """The dataset ICD-9-CM code of a SNOMED CT concept, or None when not curated."""
    return SNOMED_TO_ICD9.get(code.strip())


def text_code(text: str) -> str | None:
    """ICD-9-CM code guessed from a diagnosis' text (last, documented fallback)."""
    lowered = text.lower()
    for fragment, icd9 in TEXT_FALLBACK:
        if fragment in lowered:
            return icd9
    return None
