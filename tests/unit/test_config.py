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
    # this checkout is an editable install: the hint installs the extra into it
    assert "[aws]'" in str(err.value) and "pip install -e '" in str(err.value) and "An s3:// lake" in str(err.value)
    assert require("json", "x", "y").dumps([]) == "[]"


def test_every_backend_in_the_table_is_a_class_that_exists() -> None:
    import importlib

    for role in ROLES.values():
        for scheme, target in (role.backends or {}).items():
            if target is not None:
                module, name = target.split(":")
                assert isinstance(getattr(importlib.import_module(f"recpipe.adapters.{module}"), name), type), scheme


def test_the_table_opens_what_it_validates(tmp_path: Path) -> None:
    from recpipe.adapters import open_artifacts, open_lake
    from recpipe.adapters.local_lake import LocalLake

    assert isinstance(open_lake(f"file://{tmp_path}"), LocalLake)
    store, name = open_artifacts(str(tmp_path / "ml-artifacts"))
    assert isinstance(store, LocalLake) and name == "ml-artifacts" and store.root == tmp_path
    with pytest.raises(ConfigError, match=r"RECPIPE_LAKE_URL='ftp://h/x': scheme 'ftp' is not accepted for the lake"):
        open_lake("ftp://h/x")
    with pytest.raises(ConfigError, match="RECPIPE_LAKE_URL='s3://' names no bucket"):
        open_lake("s3://")


def test_tuning_options_are_settings_too() -> None:
    s = load_settings(environ={"RECPIPE_SERVE_THREADS": "3", "RECPIPE_SPARK_MASTER": "local[2]"}, env_file=None)
    assert (s.serve_threads, s.spark_master, s.serve_reload_every, s.serve_ef_search) == (3, "local[2]", 10.0, None)
    assert s.origins["serve_threads"] == "environment RECPIPE_SERVE_THREADS"
    assert s.environment()["RECPIPE_SERVE_THREADS"] == "3" and "RECPIPE_SERVE_EF_SEARCH" not in s.environment()
    assert load_settings(environ=s.environment(), env_file=None).masked() == s.masked()
    for var, value in (("RECPIPE_SERVE_THREADS", "0"), ("RECPIPE_SERVE_EF_SEARCH", "many"),
                       ("RECPIPE_SERVE_RELOAD_EVERY", "-1")):
        with pytest.raises(ConfigError, match=rf"{var}='{value}' cannot be the .*: it must be"):
            load_settings(environ={var: value}, env_file=None)


def test_error_kinds_say_whose_problem_it_is() -> None:
    from recpipe.errors import InputError, InternalError

    bug = InternalError("the engine wrote 3 rows but classified 4 as valid")
    assert bug.exit_code == 70 and not isinstance(bug, InputError | ConfigError)
    assert str(bug).endswith("this is a bug in recpipe: please report it; nothing was published")
    assert ConfigError("x").exit_code == InputError("x").exit_code == 2
