"""Terminology tables: the only place FHIR codes meet the dataset's codes.

Each module covers one terminology (or one dataset column family), so a reviewer can
check a table against its source in one sitting. ``diagnosis_group`` is re-exported
because feature engineering (``model_store``) uses it on both ICD-9 and mapped ICD-10.
"""

from fhir_mappings.codes.icd9 import DIAGNOSIS_GROUPS, diagnosis_group

__all__ = ["DIAGNOSIS_GROUPS", "diagnosis_group"]
