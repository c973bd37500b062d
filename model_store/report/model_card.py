"""The model card (``model_card.html`` + PNGs) of the registry's champion and its peers.

Test-set curves are recomputed, not stored: the split is a deterministic function of
the training file and the seed recorded in the manifest, so the report re-creates the
patient-held-out test set and scores it with each registered model. If the data file's
sha256 differs from the manifest's, the card says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from model_store.bands import MEDIUM_RECALL
from model_store.lace import LACE_RULE
from model_store.report.html import figure, page, paragraph, save_figure, section, table
from readmit_core.features import NON_READMITTABLE_DISPOSITIONS

INTENDED_USE = (
    "Ranks adult inpatients with diabetes at discharge by their risk of an unplanned "
    "readmission within 30 days, so that a transitions-of-care team can focus follow-up "
    "calls, medication reconciliation, education and early appointments. It supports, and "
    "never replaces, clinical judgement."
)
LIMITS = (
    "Trained on the UCI 'Diabetes 130-US hospitals' data (1999-2008, 130 US hospitals); "
    "coding, practice and populations have changed since. Readmissions to other hospitals "
    "are not observed. Discrimination is modest (ROC-AUC about 0.7): most flagged patients "
    "will not be readmitted and some readmissions are missed. Performance differs by age "
    "group (see the subgroup table): it ranks patients in their 30s to 50s better than "
    "patients over 70, whose readmissions depend more on what the data does not record "
    "(frailty, support at home); re-weighting age groups in training did not narrow this. "
    "History features count only the encounters this system has seen. The training data "
    "has no dates, so 'days since the last discharge' is estimated there from encounter "
    "ids (anchored at 30 days) while serving uses real dates. Not validated for "
    "paediatric patients, for patients discharged to death or hospice (excluded), or "
    "outside diabetes care."
)


def _latest_per_family(manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    latest: dict[str, dict[str, Any]] = {}
    for manifest in manifests:
        latest[str(manifest.get("model"))] = manifest  # list() is oldest first
    return list(latest.values())


def _metrics_rows(manifests: list[dict[str, Any]]) -> list[list[Any]]:
    rows = []
    for m in manifests:
        t = m["metrics"]["test"]
        rows.append(
            [
                f"{m['model_label']}{' (champion)' if m.get('champion') else ''}",
                m["metrics"]["cv"]["roc_auc"],
                t["roc_auc"],
                f"{t['roc_auc_ci_low']:.3f}-{t['roc_auc_ci_high']:.3f}",
                t["pr_auc"],
                t["accuracy"],
                t["precision"],
                t["recall"],
                t["f1"],
                t["brier"],
                t["ece"],
                t["ece_uncalibrated"],
            ]
        )
    lace = manifests[-1]["metrics"]["baseline_lace"]
    rows.append(
        [
            "LACE index (baseline)",
            "",
            lace["roc_auc"],
            f"{lace['roc_auc_ci_low']:.3f}-{lace['roc_auc_ci_high']:.3f}",
            lace["pr_auc"],
            lace["accuracy"],
            lace["precision"],
            lace["recall"],
            lace["f1"],
            lace["brier"],
            lace["ece"],
            "",
        ]
    )
    return rows


def _curves(predictions: dict[str, np.ndarray], y: np.ndarray, out_dir: Path) -> tuple[str, str]:
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve, roc_curve

    fig, ax = plt.subplots(figsize=(6, 5))
    for name, p in predictions.items():
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, label=name, lw=1.2)
    ax.plot([0, 1], [0, 1], color="#999", ls=":")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC, patient-held-out test set")
    ax.legend(fontsize=8)
    roc = save_figure(fig, out_dir, "card_roc.png")
    fig, ax = plt.subplots(figsize=(6, 5))
    for name, p in predictions.items():
        precision, recall, _ = precision_recall_curve(y, p)
        ax.plot(recall, precision, label=name, lw=1.2)
    ax.axhline(y.mean(), color="#999", ls=":", label="prevalence")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title("Precision-recall, patient-held-out test set")
    ax.legend(fontsize=8)
    return roc, save_figure(fig, out_dir, "card_pr.png")


def _calibration_plot(y: np.ndarray, raw: np.ndarray, calibrated: np.ndarray, out_dir: Path) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, p, style in (("uncalibrated", raw, "--"), ("calibrated", calibrated, "-")):
        edges = np.quantile(p, np.linspace(0, 1, 11))
        index = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, 9)
        mean_p = [p[index == b].mean() for b in range(10) if (index == b).any()]
        rate = [y[index == b].mean() for b in range(10) if (index == b).any()]
        ax.plot(mean_p, rate, style, marker="o", label=name)
    top = float(max(calibrated.max(), raw.max()))
    ax.plot([0, top], [0, top], color="#999", ls=":")
    ax.set_xlabel("mean predicted probability (decile)")
    ax.set_ylabel("observed 30-day readmission rate")
    ax.set_title("Calibration of the champion (test set)")
    ax.legend()
    return save_figure(fig, out_dir, "card_calibration.png")


def _confusion_plot(cm: dict[str, int], threshold: float, out_dir: Path) -> str:
    import matplotlib.pyplot as plt
    import seaborn as sns

    matrix = np.array([[cm["tn"], cm["fp"]], [cm["fn"], cm["tp"]]])
    fig, ax = plt.subplots(figsize=(4.5, 3.8))
    sns.heatmap(
        matrix,
        annot=True,
        fmt="d",
        cmap="Blues",
        cbar=False,
        ax=ax,
        xticklabels=["not flagged", "flagged"],
        yticklabels=["not readmitted", "readmitted"],
    )
    ax.set_title(f"Confusion matrix at p >= {threshold:.3f}")
    return save_figure(fig, out_dir, "card_confusion.png")


def _shap_plot(contributions: np.ndarray, sources: list[str], out_dir: Path) -> str:
    import matplotlib.pyplot as plt

    importance = np.abs(contributions).mean(axis=0)
    order = np.argsort(importance)[::-1][:15][::-1]
    rng = np.random.default_rng(0)
    fig, ax = plt.subplots(figsize=(7, 5.5))
    for row, index in enumerate(order):
        values = contributions[:, index]
        ax.scatter(
            values,
            row + rng.uniform(-0.25, 0.25, len(values)),
            s=3,
            alpha=0.3,
            c=np.where(values > 0, "#c33", "#36a"),
        )
    ax.set_yticks(range(len(order)), [sources[i] for i in order])
    ax.axvline(0, color="#999", lw=0.8)
    ax.set_xlabel("contribution to log-odds of readmission")
    ax.set_title("Champion explanations by dataset column (test set)")
    return save_figure(fig, out_dir, "card_shap.png")


def _subgroup_rows(subgroups: dict[str, Any], out_of_fold: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for column, block in subgroups.items():
        for value, m in block["groups"].items():
            if m.get("reported", True) and "roc_auc" in m:
                rows.append(
                    [
                        column,
                        value,
                        m["n"],
                        m["positives"],
                        m["roc_auc"],
                        f"{m['roc_auc_ci_low']:.3f}-{m['roc_auc_ci_high']:.3f}",
                        m["recall"],
                        m["precision"],
                        m["ece"],
                    ]
                )
            else:
                rows.append([column, value, m["n"], m["positives"], "n < 500", "", "", "", ""])
        rows.append(_gap_row(column, "largest AUC gap (test)", block))
        if column in out_of_fold:
            rows.append(_gap_row(column, "largest AUC gap (out-of-fold)", out_of_fold[column]))
    return rows


def _gap_row(column: str, label: str, block: dict[str, Any]) -> list[Any]:
    interval = ""
    if "auc_gap_ci_low" in block:
        between = " vs ".join(block["auc_gap_between"])
        interval = f"[{block['auc_gap_ci_low']:.3f}, {block['auc_gap_ci_high']:.3f}] ({between})"
    return [column, label, "", "", block["auc_gap"], interval, "", "", ""]


def write_model_card(registry_root: Path, data_path: Path, out_dir: Path) -> Path:
    """Write ``model_card.html``; returns its path."""
    from model_store.dataset import file_sha256
    from model_store.registry import NoChampionError, Registry
    from model_store.train import prepare

    registry = Registry(registry_root)
    champion = registry.load_champion()
    manifests = [m for m in _latest_per_family(registry.list()) if m["version"] != champion.version]
    manifests.append({**champion.manifest, "champion": True})
    info = champion.manifest["training_data"]
    if not registry.champion_version():
        raise NoChampionError(registry_root)
    data = prepare(data_path, sample_patients=info.get("sample_patients"), seed=int(info["seed"]))
    predictions: dict[str, np.ndarray] = {}
    for manifest in manifests:
        model = registry.load(manifest["version"])
        predictions[manifest["model_label"]] = model.trained.predict_matrix(data.x_test)
    trained = champion.trained
    raw = trained.model.raw_proba(data.x_test)
    calibrated = trained.calibrator.transform(raw)
    sample = np.random.default_rng(0).choice(
        len(calibrated), min(3000, len(calibrated)), replace=False
    )
    contributions = trained.model.contributions(data.x_test[sample], trained.groups)
    roc_png, pr_png = _curves(predictions, data.y_test, out_dir)
    test = champion.manifest["metrics"]["test"]
    notes = []
    if file_sha256(data_path) != info["sha256"]:
        notes.append(
            paragraph(
                "Warning: the data file differs from the one the champion was "
                "trained on; curves are computed on the current file.",
                note=True,
            )
        )
    cal = champion.manifest["calibration"]
    bands = champion.manifest["bands"]
    sections = [
        section(
            "Model",
            paragraph(
                f"Champion {champion.version} ({champion.manifest['model_label']}), "
                f"created {champion.manifest['created_at']}; feature set "
                f"{champion.manifest['feature_set']['name']} "
                f"({champion.manifest['feature_set']['hash'][:12]}); hyper-parameters "
                f"{champion.manifest['hyperparameters']}."
            ),
            *notes,
        ),
        section("Intended use", paragraph(INTENDED_USE)),
        section("Limits", paragraph(LIMITS)),
        section(
            "Data and validation",
            paragraph(
                f"{info['rows_in_file']:,} encounters in {Path(info['path']).name} "
                f"(sha256 {info['sha256'][:12]}); {info['excluded_non_readmittable']:,} "
                f"discharged to death or hospice (dispositions "
                f"{sorted(NON_READMITTABLE_DISPOSITIONS)}) excluded. "
                f"{info['split']['test_rows']:,} encounters of 20 % of patients held out "
                "as the test set; tuning, calibration and band thresholds use grouped 4-fold "
                "cross-validation on the other patients only. Champion = highest "
                "out-of-fold ROC-AUC."
            ),
        ),
        section(
            "Metrics (patient-held-out test set)",
            table(
                [
                    "model",
                    "CV AUC",
                    "test AUC",
                    "95% CI",
                    "PR-AUC",
                    "accuracy",
                    "precision",
                    "recall",
                    "F1",
                    "Brier",
                    "ECE",
                    "ECE raw",
                ],
                _metrics_rows(manifests),
            ),
            paragraph(
                f"Threshold metrics at each model's medium-band cut-off ({MEDIUM_RECALL:.0%} "
                f"out-of-fold recall); {LACE_RULE}."
            ),
            figure(roc_png, "ROC curves"),
            figure(pr_png, "Precision-recall curves"),
        ),
        section(
            "Calibration and risk bands",
            paragraph(
                f"Calibrator: {cal}. Bands: medium >= {bands['medium']:.3f}, "
                f"high >= {bands['high']:.3f} ({bands['rule']}). Test-set band counts: "
                f"{test['band_counts']}."
            ),
            figure(_calibration_plot(data.y_test, raw, calibrated, out_dir), "Calibration"),
            figure(
                _confusion_plot(test["confusion_matrix"], test["threshold"], out_dir),
                "Confusion matrix",
            ),
        ),
        section(
            "Explanations",
            figure(_shap_plot(contributions, trained.sources, out_dir), "Explanation summary"),
        ),
        section(
            "Subgroups (race, gender, age; AUC with DeLong 95 % CI)",
            table(
                [
                    "column",
                    "group",
                    "n",
                    "readmitted",
                    "AUC",
                    "95% CI",
                    "recall",
                    "precision",
                    "ECE",
                ],
                _subgroup_rows(
                    champion.manifest["metrics"]["subgroups"],
                    champion.manifest["metrics"].get("subgroups_cv", {}),
                ),
            ),
        ),
    ]
    out = out_dir / "model_card.html"
    out.write_text(page("Model card: 30-day readmission risk", sections))
    return out
