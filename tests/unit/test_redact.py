"""Secrets never reach a report, a log or a bundle."""
from fixtures.redact import MASK, Redactor


def test_secret_keys_are_masked_recursively():
    data = {"Env": ["POSTGRES_PASSWORD=hunter2", "ENGINE_NAME=risk"],
            "nested": {"api_key": "k-123", "DSN": "postgresql://u:p@h/db", "status": "healthy"},
            "list": [{"token": "t"}]}
    clean = Redactor().redact(data)
    assert clean["Env"] == ["POSTGRES_PASSWORD=***", "ENGINE_NAME=risk"]
    assert clean["nested"] == {"api_key": MASK, "DSN": MASK, "status": "healthy"}
    assert clean["list"] == [{"token": MASK}]


def test_patterns_in_free_text():
    r = Redactor()
    assert r.redact_text("redis://:s3cr3t@127.0.0.1:6379/0") == "redis://:***@127.0.0.1:6379/0"
    assert r.redact_text("host=db password=abc dbname=n") == "host=db password=*** dbname=n"
    assert r.redact_text("Authorization: Bearer abc.def") == "Authorization: ***"
    assert r.redact_text("export API_KEY='x y z'") == "export API_KEY=***"
    assert r.redact_text("status healthy, uptime 3s") == "status healthy, uptime 3s"


def test_known_secret_values_are_masked_anywhere():
    r = Redactor(["pw-1234", "pw-1234-longer"])
    assert r.redact_text("login with pw-1234-longer then pw-1234") == "login with *** then ***"
    assert r.redact({"note": "pw-1234 in a log line"}) == {"note": "*** in a log line"}


def test_non_strings_pass_through():
    assert Redactor().redact({"count": 3, "ok": True, "none": None}) == {"count": 3, "ok": True, "none": None}
