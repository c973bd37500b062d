from readmit_core.settings import Settings


def test_environment_overrides_defaults(monkeypatch):
    monkeypatch.setenv("READMIT_INGEST_PORT", "9100")
    monkeypatch.setenv("READMIT_TOPIC_PREFIX", "site1.")
    s = Settings()
    assert s.ingest_port == 9100
    assert s.topic("features") == "site1.features"
    assert s.ingest_url == "http://127.0.0.1:9100"


def test_ingest_tokens_are_split_and_trimmed():
    s = Settings(ingest_tokens=" a, b ,,c")
    assert s.ingest_token_set == frozenset({"a", "b", "c"})


def test_every_setting_is_documented():
    missing = [n for n, f in Settings.model_fields.items() if not f.description]
    assert missing == []
