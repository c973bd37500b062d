"""Project CodeSystems: dataset codes that have no standard FHIR equivalent.

Each has a stable canonical URL under ``https://readmit.example.org/fhir/``; the
codes are exactly the dataset's own values, so mapping them back is the identity.
CONTRACT.md lists which dataset values are sent with which system.
"""

from __future__ import annotations

from typing import Final

BASE: Final = "https://readmit.example.org/fhir"

ADMISSION_TYPE_SYSTEM: Final = f"{BASE}/CodeSystem/uci-admission-type"
ADMISSION_SOURCE_SYSTEM: Final = f"{BASE}/CodeSystem/uci-admission-source"
DISCHARGE_DISPOSITION_SYSTEM: Final = f"{BASE}/CodeSystem/uci-discharge-disposition"
PAYER_SYSTEM: Final = f"{BASE}/CodeSystem/uci-payer-code"
SPECIALTY_SYSTEM: Final = f"{BASE}/CodeSystem/uci-medical-specialty"
MEDICATION_SYSTEM: Final = f"{BASE}/CodeSystem/uci-medication"
DOSE_CHANGE_SYSTEM: Final = f"{BASE}/CodeSystem/dose-change"
DOSE_CHANGE_EXTENSION: Final = f"{BASE}/StructureDefinition/dose-change"
WARD_IDENTIFIER_SYSTEM: Final = f"{BASE}/sid/ward"

# Dose-change codes of the explicit extension (valueCode on MedicationRequest or
# MedicationAdministration): direction of the dose against the pre-admission regimen.
DOSE_CHANGE_CODES: Final[dict[str, str]] = {
    "up": "Up",
    "down": "Down",
    "steady": "Steady",
    "switched": "Steady",  # a different generic replaced an earlier one: change=Ch
}

# Payer codes of the dataset (no public definition exists; kept verbatim).
PAYER_CODES: Final = (
    "MC", "MD", "HM", "UN", "BC", "SP", "CP", "SI", "DM", "CM", "CH", "PO", "WC", "OT",
    "OG", "MP", "FR",
)  # fmt: skip

# Source of Payment Typology (PHDSC), for payers whose meaning is unambiguous. Sent as
# an additional coding; the mapper reads it only when the project code is absent.
SOPT_SYSTEM: Final = "https://nahdo.org/sopt"
SOPT_BY_PAYER: Final[dict[str, tuple[str, str]]] = {
    "MC": ("1", "MEDICARE"),
    "MD": ("2", "MEDICAID"),
    "BC": ("6", "BLUE CROSS/BLUE SHIELD"),
    "SP": ("81", "Self-pay"),
    "WC": ("95", "Worker's Compensation"),
}
PAYER_BY_SOPT: Final[dict[str, str]] = {code: payer for payer, (code, _) in SOPT_BY_PAYER.items()}

# Medical specialties of the dataset (kept verbatim as codes).
SPECIALTIES: Final = (
    "InternalMedicine", "Emergency/Trauma", "Family/GeneralPractice", "Cardiology",
    "Surgery-General", "Nephrology", "Orthopedics", "Orthopedics-Reconstructive",
    "Radiologist", "Pulmonology", "Psychiatry", "Urology", "ObstetricsandGynecology",
    "Surgery-Cardiovascular/Thoracic", "Gastroenterology", "Surgery-Vascular",
    "Surgery-Neuro", "PhysicalMedicineandRehabilitation", "Oncology", "Pediatrics",
    "Hematology/Oncology", "Neurology", "Pediatrics-Endocrinology", "Otolaryngology",
    "Endocrinology", "Psychology", "Surgery-Thoracic", "Podiatry", "Surgery-Cardiovascular",
    "Pediatrics-CriticalCare", "Hematology", "Gynecology", "Hospitalist", "Radiology",
    "Surgeon", "Surgery-Plastic", "Ophthalmology", "Osteopath", "InfectiousDiseases",
    "SurgicalSpecialty", "Pediatrics-Pulmonology", "Obsterics&Gynecology-GynecologicOnco",
    "Anesthesiology-Pediatric", "Obstetrics", "Pathology", "Rheumatology", "Anesthesiology",
    "PhysicianNotFound", "OutreachServices", "Surgery-Maxillofacial", "Pediatrics-Neurology",
    "Surgery-Colon&Rectal", "Surgery-Pediatric", "Psychiatry-Child/Adolescent",
    "AllergyandImmunology", "Endocrinology-Metabolism", "DCPTEAM", "Cardiology-Pediatric",
    "Pediatrics-Hematology-Oncology", "Dentistry", "Pediatrics-AllergyandImmunology",
    "Pediatrics-EmergencyMedicine", "Resident", "Surgery-PlasticwithinHeadandNeck",
    "Pediatrics-InfectiousDiseases", "Psychiatry-Addictive", "Proctology", "Dermatology",
    "SportsMedicine", "Speech", "Perinatology", "Neurophysiology",
)  # fmt: skip
SPECIALTY_SET: Final = frozenset(SPECIALTIES)
