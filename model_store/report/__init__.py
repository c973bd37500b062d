"""Static HTML + PNG reports: the EDA of the training data and the model card."""

from __future__ import annotations

from pathlib import Path


def build_reports(data_path: Path, registry_root: Path, out_dir: Path) -> list[Path]:
    """Write ``eda.html`` and ``model_card.html`` (with their PNGs) into ``out_dir``."""
    from model_store.report.eda import write_eda
    from model_store.report.model_card import write_model_card

    out_dir.mkdir(parents=True, exist_ok=True)
    return [write_eda(data_path, out_dir), write_model_card(registry_root, data_path, out_dir)]
