"""Exploratory data analysis of the training data (``eda.html`` + PNGs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from model_store.report.html import figure, page, paragraph, save_figure, section, table
from readmit_core.features import (
    COUNT_COLUMNS,
    DATASET_COLUMNS,
    HISTORY_COLUMNS,
    MISSING_CATEGORY,
    MISSING_LAB,
    NON_READMITTABLE_DISPOSITIONS,
)

GROUP_COLUMNS = (
    "age",
    "race",
    "gender",
    "admission_type_id",
    "discharge_disposition_id",
    "a1c_tested",
)


def _missing_table(frame: Any) -> list[list[Any]]:
    rows = []
    for column in DATASET_COLUMNS:
        values = frame[column].astype(str)
        marker = MISSING_LAB if column in ("max_glu_serum", "A1Cresult") else MISSING_CATEGORY
        missing = int((values == marker).sum())
        if missing:
            rows.append([column, marker, missing, missing / len(frame)])
    return sorted(rows, key=lambda r: -r[2])


def _rate_plot(frame: Any, column: str, out_dir: Path) -> str:
    import matplotlib.pyplot as plt

    grouped = frame.groupby(column)["readmitted_30"].agg(["mean", "size"]).reset_index()
    grouped = grouped[grouped["size"] >= 100]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.bar(grouped[column].astype(str), grouped["mean"] * 100, color="#4a78a8")
    ax.axhline(frame["readmitted_30"].mean() * 100, color="#c44", ls="--", lw=1, label="overall")
    ax.set_ylabel("readmitted < 30 days (%)")
    ax.set_title(f"Readmission rate by {column} (groups with >= 100 encounters)")
    ax.tick_params(axis="x", rotation=45)
    ax.legend()
    return save_figure(fig, out_dir, f"eda_rate_{column}.png")


def _correlation_plot(frame: Any, out_dir: Path) -> str:
    import matplotlib.pyplot as plt
    import seaborn as sns

    columns = [*COUNT_COLUMNS, *HISTORY_COLUMNS, "readmitted_30"]
    corr = frame[columns].astype(float).corr()
    fig, ax = plt.subplots(figsize=(8, 6.5))
    sns.heatmap(
        corr,
        cmap="RdBu_r",
        center=0,
        vmin=-1,
        vmax=1,
        annot=True,
        fmt=".2f",
        ax=ax,
        annot_kws={"size": 6},
    )
    ax.set_title("Correlation of count and history columns with the target")
    return save_figure(fig, out_dir, "eda_correlation.png")


def _pca_plot(matrix: np.ndarray, y: np.ndarray, out_dir: Path) -> tuple[str, list[float]]:
    import matplotlib.pyplot as plt
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    index = rng.choice(len(y), size=min(6000, len(y)), replace=False)
    scaled = StandardScaler().fit_transform(matrix[index])
    pca = PCA(n_components=10, random_state=0).fit(scaled)
    points = pca.transform(scaled)[:, :2]
    fig, ax = plt.subplots(figsize=(6.5, 5))
    for label, colour, name in (
        (0, "#9ab", "not readmitted < 30 d"),
        (1, "#c33", "readmitted < 30 d"),
    ):
        mask = y[index] == label
        ax.scatter(points[mask, 0], points[mask, 1], s=4, alpha=0.4, c=colour, label=name)
    ax.set_xlabel(f"PC1 ({pca.explained_variance_ratio_[0]:.1%})")
    ax.set_ylabel(f"PC2 ({pca.explained_variance_ratio_[1]:.1%})")
    ax.set_title("PCA of the encoded features (6,000 encounters)")
    ax.legend(markerscale=3)
    return save_figure(fig, out_dir, "eda_pca.png"), [
        float(v) for v in pca.explained_variance_ratio_
    ]


def _importance_plot(
    matrix: np.ndarray, y: np.ndarray, sources: list[str], owner: np.ndarray, out_dir: Path
) -> str:
    """Model-free importance: LightGBM gain summed per dataset column (quick, 200 trees)."""
    import matplotlib.pyplot as plt
    from lightgbm import LGBMClassifier

    model = LGBMClassifier(
        n_estimators=200, learning_rate=0.05, num_leaves=15, n_jobs=1, random_state=0, verbose=-1
    )
    model.fit(matrix, y)
    gain = model.booster_.feature_importance(importance_type="gain")
    per_source = np.bincount(owner, weights=gain, minlength=len(sources))
    order = np.argsort(per_source)[::-1][:20]
    fig, ax = plt.subplots(figsize=(7, 5))
    ax.barh(
        [sources[i] for i in order][::-1],
        (per_source[order] / per_source.sum())[::-1],
        color="#4a78a8",
    )
    ax.set_xlabel("share of total gain")
    ax.set_title("Feature importance by dataset column (LightGBM gain)")
    return save_figure(fig, out_dir, "eda_importance.png")


def write_eda(data_path: Path, out_dir: Path) -> Path:
    """Write ``eda.html``; returns its path."""
    from model_store import dataset
    from model_store.encoding import FeatureEncoder
    from model_store.encounter_clock import fit_encounter_clock

    raw = dataset.load_dataset(data_path)
    # Descriptive only (no model is evaluated here), so the clock may see every patient.
    frame = dataset.add_history(raw, fit_encounter_clock(raw, raw["patient_nbr"].unique()))
    frame["readmitted_30"] = dataset.target(frame)
    frame["a1c_tested"] = np.where(frame["A1Cresult"] == MISSING_LAB, "not tested", "tested")
    excluded = ~dataset.readmittable(frame)
    usable = frame[~excluded]
    sections = [
        section(
            "Data",
            paragraph(
                f"{data_path.name}: {len(frame):,} encounters of "
                f"{frame['patient_nbr'].nunique():,} patients; 30-day readmission rate "
                f"{frame['readmitted_30'].mean():.1%}. "
                f"{int(excluded.sum()):,} encounters end in death or hospice "
                f"(discharge dispositions {sorted(NON_READMITTABLE_DISPOSITIONS)}) and are "
                "excluded from modelling; the analyses below use the remaining "
                f"{len(usable):,}."
            ),
        ),
        section(
            "Missing values and duplicates",
            table(["column", "missing marker", "rows", "share"], _missing_table(frame)),
            paragraph(
                f"Duplicate encounter ids: {int(frame['encounter_id'].duplicated().sum())}. "
                f"Fully duplicated rows: {int(raw.duplicated().sum())}. "
                f"Patients with more than one encounter: "
                f"{int((frame['patient_nbr'].value_counts() > 1).sum()):,} "
                "(their encounters never straddle the train/test split)."
            ),
        ),
    ]
    rate_figures = [
        figure(_rate_plot(usable, c, out_dir), f"30-day readmission rate by {c}")
        for c in GROUP_COLUMNS
    ]
    rate_rows = [
        [c, str(v), int(n), float(m)]
        for c in GROUP_COLUMNS
        for v, (m, n) in usable.groupby(c)["readmitted_30"].agg(["mean", "size"]).iterrows()
        if n >= 100
    ]
    sections.append(
        section(
            "Readmission rate by patient group",
            *rate_figures,
            table(["column", "group", "encounters", "rate < 30 d"], rate_rows),
        )
    )
    tuples = dataset.feature_tuples(usable)
    encoder = FeatureEncoder().fit(tuples)
    matrix = encoder.encode_tuples(tuples)
    y = usable["readmitted_30"].to_numpy()
    sources, owner = encoder.source_index()
    pca_png, ratios = _pca_plot(matrix, y, out_dir)
    sections += [
        section(
            "Feature importance",
            figure(
                _importance_plot(matrix, y, sources, owner, out_dir), "Importance by dataset column"
            ),
            paragraph(
                "In-sample gain of a quick LightGBM on all usable encounters; the model "
                "card shows the champion's SHAP summary on held-out patients."
            ),
        ),
        section("Correlations", figure(_correlation_plot(usable, out_dir), "Correlation heatmap")),
        section(
            "PCA",
            figure(pca_png, "PCA scatter"),
            paragraph(
                "Explained variance of the first ten components: "
                + ", ".join(f"{r:.1%}" for r in ratios)
                + ". Readmitted and other encounters overlap almost completely: no "
                "low-dimensional structure separates them, as the modest AUCs confirm."
            ),
        ),
    ]
    out = out_dir / "eda.html"
    out.write_text(page("Readmission data: exploratory analysis", sections))
    return out
