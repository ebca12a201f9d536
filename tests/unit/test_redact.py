"""Secrets never reach a report, a log or a bundle."""
from collections import namedtuple

import pytest

from observation.redact import MASK, Redactor, redact, redact_text
from observation.redis_bus import credentials_fix


def test_mask_is_three_stars():
    assert MASK == "***"


@pytest.mark.parametrize("key", ["password", "PASSWORD", "db_password", "passwd", "POSTGRES_PASSWD", "secret",
                                 "client_secret", "token", "access_token", "api_key", "api-key", "apikey", "API_KEY",
                                 "credentials", "dsn", "DSN", "private_key", "private-key", "privatekey"])
def test_secret_keys_are_masked(key):
    assert redact({key: "v4lue", "status": "healthy"}) == {key: MASK, "status": "healthy"}


@pytest.mark.parametrize("key", ["status", "engine", "uptime_seconds", "messagebus_connected", "user", "host",
                                 "port", "passage", "pass", "key", "authored"])
def test_ordinary_keys_are_kept(key):
    assert redact({key: "v4lue"}) == {key: "v4lue"}


def test_recursive_over_dicts_lists_and_tuples():
    data = {"Config": {"Env": ["POSTGRES_PASSWORD=hunter2", "ENGINE_NAME=risk", "REDIS_URL=redis://:rp@r:6379/0"]},
            "nested": {"api_key": "k-123", "DSN": "postgresql://u:p@h/db", "status": "healthy",
                       "creds": {"credential": {"user": "a", "pw": "b"}}},
            "list": [{"token": "t"}, ("Authorization: Bearer abc",)],
            "count": 3, "ok": True, "none": None}
    assert redact(data) == {
        "Config": {"Env": ["POSTGRES_PASSWORD=***", "ENGINE_NAME=risk", "REDIS_URL=redis://:***@r:6379/0"]},
        "nested": {"api_key": MASK, "DSN": MASK, "status": "healthy", "creds": {"credential": MASK}},
        "list": [{"token": MASK}, ("Authorization: ***",)],
        "count": 3, "ok": True, "none": None}
    assert data["nested"]["api_key"] == "k-123"  # a copy: the original is untouched


def test_unset_secrets_stay_visible():
    assert redact({"password": None, "token": ""}) == {"password": None, "token": ""}


def test_named_tuples_keep_their_type():
    Pair = namedtuple("Pair", "name value")
    assert redact(Pair("dsn", "postgresql://u:pw@h/db")) == Pair("dsn", "postgresql://u:***@h/db")


@pytest.mark.parametrize("text,expected", [
    ("postgresql://nautilus:s3cr3t@127.0.0.1:5432/nautilus", "postgresql://nautilus:***@127.0.0.1:5432/nautilus"),
    ("redis://:s3cr3t@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
    ("postgresql+psycopg://u:p@ss@h/db", "postgresql+psycopg://u:***@h/db"),
    ("ssh://ops@host and https://example.com/a:b", "ssh://ops@host and https://example.com/a:b"),
    ("host=db port=5432 password=abc dbname=n", "host=db port=5432 password=*** dbname=n"),
    ("host=db password='a b c' dbname=n", "host=db password=*** dbname=n"),
    ("POSTGRES_PASSWORD=hunter2", "POSTGRES_PASSWORD=***"),
    ("export API_KEY='x y z'", "export API_KEY=***"),
    ("GITHUB_TOKEN=ghp_abc; DEBUG=1", "GITHUB_TOKEN=***; DEBUG=1"),
    ('{"password": "hunter2", "user": "u"}', '{"password": ***, "user": "u"}'),
    ("client_secret: abc123", "client_secret: ***"),
    ("Authorization: Bearer abc.def.ghi", "Authorization: ***"),
    ("authorization: Basic dXNlcjpwYXNz\nnext line", "authorization: ***\nnext line"),
    ("status healthy, uptime 3s, messagebus_connected=true", "status healthy, uptime 3s, messagebus_connected=true"),
])
def test_patterns_in_free_text(text, expected):
    assert redact_text(text) == expected
    assert Redactor().redact_text(text) == expected


def test_known_secret_values_are_masked_anywhere():
    r = Redactor(["pw-1234", "pw-1234-longer", "", None])
    assert r.redact_text("login with pw-1234-longer then pw-1234") == "login with *** then ***"
    assert r.redact({"note": "pw-1234 in a log line", "list": ["xpw-1234x"]}) == \
        {"note": "*** in a log line", "list": ["x***x"]}
    assert r.redact_text("nothing secret here") == "nothing secret here"


def test_known_secret_is_masked_even_where_no_pattern_would_catch_it():
    leaked = "psql: FATAL: connection failed for nautilus/Zx9-unusual"
    assert Redactor(["Zx9-unusual"]).redact_text(leaked) == "psql: FATAL: connection failed for nautilus/***"
    assert redact_text(leaked) == leaked


def test_non_strings_pass_through():
    assert redact({"count": 3, "ok": True, "none": None, "ratio": 0.5}) == \
        {"count": 3, "ok": True, "none": None, "ratio": 0.5}
    assert redact(42) == 42 and redact(None) is None


@pytest.mark.parametrize("text,expected", [
    ("PASSWORD=two words", "PASSWORD=***"),
    ("POSTGRES_PASSWORD=two words\nENGINE_NAME=risk", "POSTGRES_PASSWORD=***\nENGINE_NAME=risk"),
    ("POSTGRES_PASSWORD=a,b;c&d", "POSTGRES_PASSWORD=***"),
    ("POSTGRES_PASSWORD=it's mine", "POSTGRES_PASSWORD=***"),
    ("POSTGRES_PASSWORD=two words DEBUG=1", "POSTGRES_PASSWORD=*** DEBUG=1"),
    ("API_KEY=value DEBUG=1", "API_KEY=*** DEBUG=1"),
    ('PASSWORD="two \\" words" DEBUG=1', "PASSWORD=*** DEBUG=1"),
    ("PASSWORD='two words'", "PASSWORD=***"),
    ("export TOKEN='a'\"'\"'b'", "export TOKEN=***"),
    ("host=db password=abc dbname=n", "host=db password=*** dbname=n"),
    ("host=db password='a \\' b' dbname=n", "host=db password=*** dbname=n"),
    ('{"password": "a b"}', '{"password": ***}'),
    ('{"api_key":"x\\"y","user":"u"}', '{"api_key":***,"user":"u"}'),
    ("{'token': 'a b', 'user': 'u'}", "{'token': ***, 'user': 'u'}"),
    ('{"Env": ["POSTGRES_PASSWORD=a b, c", "DEBUG=1"]}', '{"Env": ["POSTGRES_PASSWORD=***", "DEBUG=1"]}'),
    ("https://h/login?password=x&y=1", "https://h/login?password=***&y=1"),
    ("redis://u:a%20b@r:6379/0", "redis://u:***@r:6379/0"),
    ("Authorization: Bearer a b c", "Authorization: ***"),
])
def test_secret_values_are_masked_whole(text, expected):
    assert redact_text(text) == expected


@pytest.mark.parametrize("text,expected", [
    ("password: hunter2", "password: ***"),  # YAML: the key starts the line
    ("  - PASSWORD: two words", "  - PASSWORD: ***"),
    ("config client_secret: abc def", "config client_secret: ***"),
    ("config db.password: abc", "config db.password: ***"),
    ("config API-KEY: abc", "config API-KEY: ***"),
    ('config password: "a b" more', "config password: ***"),
    ('config "password": "a b"', 'config "password": ***'),
])
def test_key_colon_value_is_masked_where_it_cannot_be_prose(text, expected):
    assert redact_text(text) == expected


@pytest.mark.parametrize("text", [
    "the inventory names no redis.password_env, so the suite sent no password: set redis.password_env to it",
    "postgres password: set PW or PW_FILE (a file holding it)",
    "rotate the token: then restart",
    "check the secret NAUTILUS_POSTGRES_PASSWORD (or its _FILE)",
])
def test_prose_naming_a_secret_is_kept(text):
    assert redact_text(text) == text


def test_redact_known_masks_known_values_and_nothing_else():
    r = Redactor(["hunter22", "pw"])
    assert r.redact_known("PASSWORD=abc password: x hunter22 pw pwd") == "PASSWORD=abc password: x *** *** pwd"
    assert Redactor().redact_known("Authorization: Bearer t0k") == "Authorization: Bearer t0k"


@pytest.mark.parametrize("fix", [
    credentials_fix(None), credentials_fix("NAUTILUS_REDIS_PASSWORD"),
    "check the secret NAUTILUS_POSTGRES_PASSWORD (or its _FILE) against user 'nautilus''s password in PostgreSQL; "
    "nothing to restart",
])
def test_the_suites_own_advice_is_shown_as_written(fix):
    redactor = Redactor(["hunter22"])
    assert redactor.redact_known(fix) == fix
    assert redactor.redact_text(fix) == fix
