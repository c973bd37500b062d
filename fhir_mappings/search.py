"""Reading FHIR search strings: the one parser for ``identifier=[system]|[value]``.

Two places search by identifier: a conditional reference inside a document
(``Patient?identifier=sys|val``, resolved among its entries by ``fhir_mappings.bundle``)
and conditional create (``If-None-Exist``, resolved against what was accepted by
``ingest.conditional``). Each decides what it supports; both read the query and its
tokens here, so ``|value``, ``system|`` and URL-encoding mean the same in both.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

# (system, value) of a token: system None = any system, "" = no system; value "" = any
Token = tuple[str | None, str]


def search_pairs(query: str) -> list[tuple[str, str]]:
    """(name, value) of each parameter of a search query, URL-decoded, in order; a
    leading ``Type?`` (``Patient?identifier=...``) is accepted as well as the bare query."""
    text = query.strip()
    if "?" in text:
        text = text.split("?", 1)[1]
    return parse_qsl(text, keep_blank_values=True)


def token(value: str) -> Token:
    """A token search value: ``system|value``, ``|value`` (no system), ``system|`` (any
    value of that system) or ``value`` (any system). A system is a URI, which has no
    ``|``, so the first bar separates."""
    if "|" not in value:
        return None, value
    system, _, code = value.partition("|")
    return system, code


def tokens(value: str) -> list[Token]:
    """The alternatives of one parameter value (comma-separated: any may match)."""
    return [token(part) for part in value.split(",")]


def identifier_matches(resource: dict[str, Any], wanted: Token) -> bool:
    """Whether one of the resource's ``identifier`` entries matches the token."""
    system, value = wanted
    for ident in resource.get("identifier") or ():
        if not isinstance(ident, dict):
            continue
        if system is not None and (ident.get("system") or "") != system:
            continue
        if not value or ident.get("value") == value:
            return True
    return False
