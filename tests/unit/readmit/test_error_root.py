"""Every error the project defines derives from the one root and carries its fields."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

from readmit_core.errors import ReadmitError

PACKAGES = (
    "readmit_core",
    "readmit",
    "ingest",
    "scorer",
    "model_store",
    "fhir_mappings",
    "patient_state",
    "alerts_web",
)
# Django-bound modules import settings at import time; they are covered through
# alerts_web's plain modules and its apps' non-model modules below.
SKIP_PREFIXES = ("alerts_web.asgi", "alerts_web.urls", "readmit.__main__")


def _project_exceptions() -> list[type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for name in PACKAGES:
        package = importlib.import_module(name)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{name}."):
            if info.name.startswith(SKIP_PREFIXES) or ".migrations" in info.name:
                continue
            try:
                module = importlib.import_module(info.name)
            except Exception:  # noqa: BLE001 - a module needing Django/a server is skipped
                continue
            for _, obj in inspect.getmembers(module, inspect.isclass):
                if (
                    issubclass(obj, BaseException)
                    and obj.__module__ == module.__name__
                    and obj.__module__.split(".")[0] in PACKAGES
                ):
                    found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return list(found.values())


def test_every_project_exception_derives_from_readmit_error() -> None:
    exceptions = _project_exceptions()
    assert len(exceptions) > 20  # the walk really found the project's errors
    strays = sorted(
        f"{e.__module__}.{e.__qualname__}" for e in exceptions if not issubclass(e, ReadmitError)
    )
    assert strays == []


@pytest.mark.parametrize("error", _project_exceptions(), ids=lambda e: e.__qualname__)
def test_structured_fields_are_well_formed(error: type[ReadmitError]) -> None:
    assert 400 <= error.status <= 599
    assert error.issue_code
    assert error.issue_code == error.issue_code.lower()
    assert error.dlq_reason is None or isinstance(error.dlq_reason, str)
