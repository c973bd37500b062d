"""Rendering helpers for the static reports: one page template, tables, figures."""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from string import Template
from typing import Any

_TEMPLATE = Path(__file__).parent / "templates" / "page.html"


def page(title: str, sections: Sequence[str]) -> str:
    return Template(_TEMPLATE.read_text()).substitute(
        title=html.escape(title),
        body="\n".join(sections),
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return html.escape(str(value))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def figure(name: str, caption: str) -> str:
    image = f'<img src="{html.escape(name)}" alt="{html.escape(caption)}">'
    return f"<figure>{image}<figcaption>{html.escape(caption)}</figcaption></figure>"


def section(title: str, *parts: str) -> str:
    return f"<h2>{html.escape(title)}</h2>\n" + "\n".join(parts)


def paragraph(text: str, *, note: bool = False) -> str:
    css = ' class="note"' if note else ""
    return f"<p{css}>{html.escape(text)}</p>"


def save_figure(fig: Any, out_dir: Path, name: str) -> str:
    """Save a matplotlib figure as PNG next to the page and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(out_dir / name, dpi=110)
    plt.close(fig)
    return name
