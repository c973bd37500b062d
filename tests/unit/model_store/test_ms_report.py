from __future__ import annotations

from pathlib import Path

import pandas as pd

from model_store import dataset
from model_store.benchmark import measure_scoring
from model_store.report.eda import write_eda
from model_store.report.model_card import write_model_card
from model_store.serving import ScoringModel
from readmit_core.features import FeatureRecord


def test_eda_report_on_a_small_file(small_csv: Path, tmp_path: Path) -> None:
    page = write_eda(small_csv, tmp_path)
    text = page.read_text()
    for heading in ("Missing values", "Readmission rate by patient group", "PCA", "Correlations"):
        assert heading in text
    for image in ("eda_pca.png", "eda_correlation.png", "eda_rate_a1c_tested.png"):
        assert (tmp_path / image).stat().st_size > 1000
        assert image in text


def test_model_card(registry_root: Path, data_path: Path, tmp_path: Path) -> None:
    page = write_model_card(registry_root, data_path, tmp_path)
    text = page.read_text()
    for needle in ("Intended use", "Limits", "LACE index", "(champion)", "Subgroups", "95% CI"):
        assert needle in text
    for image in ("card_roc.png", "card_pr.png", "card_calibration.png", "card_shap.png"):
        assert (tmp_path / image).exists()


def test_benchmark_reports_every_number(champion: ScoringModel, small_frame: pd.DataFrame) -> None:
    records: list[FeatureRecord] = [
        dataset.record_from_values(r) for r in small_frame.iloc[:300].to_dict("records")
    ]
    result = measure_scoring(champion, records, single_events=50)
    assert result["model_version"] == champion.version
    assert result["sklearn_one_row_dataframe_ms_median"] > 0
    serving = result["serving"]
    for key in (
        "single_predict_proba_ms_median",
        "single_speedup_vs_sklearn_dataframe",
        "single_score_explained_ms_median",
        "batch_predict_proba_rows_per_s",
        "batch_score_explained_rows_per_s",
    ):
        assert serving[key] > 0
    assert "serving_compiled" not in result  # the test champion is logistic regression
