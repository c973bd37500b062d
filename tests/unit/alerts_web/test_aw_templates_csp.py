"""Every template runs under ``script-src 'self'`` and ``style-src 'self'``: no inline code.

An inline ``<script>`` body, an ``on*=`` handler, a ``javascript:`` URL, a ``style=``
attribute or a ``<style>`` element would be refused by the browser (the page silently
breaks), so none may appear. ``<script type="application/json">`` data blocks are not
script and are allowed, as are ``<script src=...>`` files of this origin.
"""

from __future__ import annotations

import re
from pathlib import Path

import alerts_web

TEMPLATES = sorted(Path(alerts_web.__file__).parent.rglob("templates/**/*.html"))
SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script>", re.S | re.I)
HANDLER = re.compile(r"""<[^>]*\son[a-z]+\s*=""", re.I)
JS_URL = re.compile(r"""(?:href|src|action)\s*=\s*["']?\s*javascript:""", re.I)
STYLE = re.compile(r"""<style\b|<[^>]*\sstyle\s*=""", re.I)


def inline_code(text: str) -> list[str]:
    """What in a template the policy would refuse, quoted briefly."""
    found = []
    for attributes, body in SCRIPT.findall(text):
        is_data = re.search(r"""type\s*=\s*["']application/(ld\+)?json["']""", attributes)
        if body.strip() and not is_data:
            found.append(f"inline <script>: {body.strip()[:40]!r}")
        if not body.strip() and "src=" not in attributes and not is_data:
            found.append("empty <script> without src")
    found += [f"handler: {m.group(0)[:60]!r}" for m in HANDLER.finditer(text)]
    found += [f"javascript: URL: {m.group(0)!r}" for m in JS_URL.finditer(text)]
    found += [f"inline style: {m.group(0)[:60]!r}" for m in STYLE.finditer(text)]
    return found


def test_there_are_templates_to_check() -> None:
    names = {p.name for p in TEMPLATES}
    assert {"base.html", "login.html", "dashboard.html", "swagger_ui.html"} <= names


def test_no_template_has_inline_script_handlers_or_style() -> None:
    offenders = {str(p): inline_code(p.read_text()) for p in TEMPLATES}
    assert {p: f for p, f in offenders.items() if f} == {}


def test_the_check_finds_what_it_must() -> None:
    assert inline_code("<script>alert(1)</script>")
    assert inline_code('<button onclick="go()">')
    assert inline_code('<a href="javascript:go()">')
    assert inline_code('<div style="color:red">')
    assert inline_code("<style>p{}</style>")
    assert not inline_code('<script src="/static/a.js"></script>')
    assert not inline_code('<script type="application/json" id="c">{"a": 1}</script>')
    assert not inline_code('<div class="onward" data-on="x">')
