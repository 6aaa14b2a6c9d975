from pathlib import Path

import pytest

from recpipe.config import ROLES, load_settings, mask_url
from recpipe.errors import ConfigError


def test_embedded_defaults_live_under_home(tmp_path: Path) -> None:
    s = load_settings(environ={"RECPIPE_HOME": str(tmp_path / "h")}, env_file=None)
    home = (tmp_path / "h").resolve()
    assert s.home == home
    assert s.source_url == f"sqlite:///{home / 'source.db'}"
    assert s.lake_url == str(home / "lake")
    assert s.artifacts_url == str(home / "lake" / "ml-artifacts")
    assert s.vectors_url == f"pgserver://{home / 'pg'}"
    assert s.stream_url == str(home / "stream")
    assert s.recommendations_url == str(home / "recommendations")
    assert s.engine == "duckdb"
    assert s.origins["home"] == "environment RECPIPE_HOME"
    assert s.origins["source_url"].startswith("default")


def test_precedence_flag_then_environment_then_dotenv(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("RECPIPE_LAKE_URL=s3://from-file/lake\nRECPIPE_ENGINE=spark\n"
                        "RECPIPE_STREAM_URL=kinesis://clicks\n")
    environ = {"RECPIPE_LAKE_URL": "s3://from-env/lake", "RECPIPE_HOME": str(tmp_path)}
    s = load_settings({"stream_url": "/tmp/flag-stream"}, environ=environ, env_file=env_file)
    assert s.lake_url == "s3://from-env/lake"
    assert s.origins["lake_url"] == "environment RECPIPE_LAKE_URL"
    assert s.engine == "spark"
    assert s.origins["engine"] == f"{env_file} RECPIPE_ENGINE"
    assert s.stream_url == "/tmp/flag-stream"
    assert s.origins["stream_url"] == "command-line flag"
    # artifacts follow the lake unless set themselves
    assert s.artifacts_url == "s3://from-env/lake/ml-artifacts"


def test_every_role_is_listed_once() -> None:
    envs = [r.env for r in ROLES.values()]
    assert envs == sorted(set(envs), key=envs.index)
    assert "RECPIPE_SOURCE_URL" in envs and "RECPIPE_ENGINE" in envs


@pytest.mark.parametrize(("url", "expected"), [
    ("mysql+pymysql://shop:s3cret@db:3306/classicmodels", "mysql+pymysql://shop:***@db:3306/classicmodels"),
    ("postgresql://u:p%40ss@h/db?sslmode=require", "postgresql://u:***@h/db?sslmode=require"),
    ("s3://bucket/prefix?aws_secret_access_key=abc", "s3://bucket/prefix?aws_secret_access_key=%2A%2A%2A"),
    ("sqlite:////abs/path/source.db", "sqlite:////abs/path/source.db"),
    ("/plain/path", "/plain/path"),
])
def test_mask_url_hides_secrets_only(url: str, expected: str) -> None:
    assert mask_url(url) == expected


def test_settings_never_show_a_password() -> None:
    s = load_settings(environ={"RECPIPE_SOURCE_URL": "mysql+pymysql://u:topsecret@h/db"}, env_file=None)
    assert "topsecret" not in str(s.masked())


@pytest.mark.parametrize(("var", "value", "needle"), [
    ("RECPIPE_SOURCE_URL", "oracle://u:pw@h/db", "scheme 'oracle' is not accepted for the source database"),
    ("RECPIPE_SOURCE_URL", "/just/a/path.db", "a local path is not accepted for the source database"),
    ("RECPIPE_LAKE_URL", "gs://bucket/x", "scheme 'gs'"),
    ("RECPIPE_VECTORS_URL", "mysql://h/db", "vector store"),
    ("RECPIPE_STREAM_URL", "kafka://broker/topic", "event stream"),
    ("RECPIPE_ENGINE", "pandas", "not an ETL engine"),
])
def test_bad_values_name_the_setting_and_the_fix(var: str, value: str, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(environ={var: value}, env_file=None)
    text = str(err.value)
    assert var in text and needle in text
    assert "use" in text  # says what is accepted
    assert "pw@" not in text


def test_a_missing_optional_dependency_names_the_extra() -> None:
    from recpipe.errors import MissingDependencyError, require

    with pytest.raises(MissingDependencyError) as err:
        require("recpipe_no_such_module", "aws", "An s3:// lake")
    assert "pip install 'recpipe[aws]'" in str(err.value) and "An s3:// lake" in str(err.value)
    assert require("json", "x", "y").dumps([]) == "[]"
