from pathlib import Path

import pytest

from alerts_web.database_url import UnsupportedDatabaseURL, database_config


def test_empty_url_means_sqlite_in_state_dir(tmp_path: Path) -> None:
    cfg = database_config("", tmp_path)
    assert cfg["ENGINE"] == "django.db.backends.sqlite3"
    assert cfg["NAME"] == str(tmp_path / "alerts_web.sqlite3")


def test_postgres_url_is_split_into_django_fields(tmp_path: Path) -> None:
    cfg = database_config(
        "postgresql://app:s%40cret@db.example:6543/readmit?sslmode=require", tmp_path
    )
    assert cfg["ENGINE"] == "django.db.backends.postgresql"
    assert (cfg["USER"], cfg["PASSWORD"], cfg["HOST"], cfg["PORT"], cfg["NAME"]) == (
        "app",
        "s@cret",
        "db.example",
        "6543",
        "readmit",
    )
    assert cfg["OPTIONS"] == {"sslmode": "require"}


def test_other_engines_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedDatabaseURL) as err:
        database_config("mysql://root@localhost/x", tmp_path)
    assert err.value.scheme == "mysql"
