"""The one settings object: a URL per backend role, read at entry points and passed down.

Each role comes from one ``RECPIPE_*`` environment variable (or a ``.env`` file, or a
command-line flag); every role has an embedded default under ``RECPIPE_HOME`` that needs no
server and no account. The README's Configuration section lists them.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from dotenv import dotenv_values

from recpipe.contracts.dataset import ENGINES
from recpipe.errors import ConfigError

ENV_PREFIX = "RECPIPE_"
SECRET_QUERY_KEYS = {"password", "pass", "pwd", "secret", "token", "aws_secret_access_key"}


_LAKES = {"": "local_lake:LocalLake", "file": "local_lake:LocalLake", "s3": "s3_lake:S3Lake"}


@dataclass(frozen=True)
class Role:
    """One setting. A backend role maps each URL scheme it accepts to the adapter class that
    opens it (``"module:Class"`` under ``recpipe.adapters``, imported only when opened; None:
    accepted, opened by a stage that does not exist yet); "" is a plain local path."""

    field: str
    what: str
    examples: str
    backends: Mapping[str, str | None] | None = None
    parse: Callable[[str], Any] | None = None  # a tuning option: how its text becomes a value
    secret: bool = False  # never shown: `recpipe config` and errors print "***"
    unset: str = "unset (recpipe chooses)"  # what leaving it unset means, as `recpipe config` says it
    # the value when nothing sets it, from the values resolved before it (None: left unset), and
    # what `recpipe config` calls it
    default: Callable[[Mapping[str, str]], str] | None = None
    default_origin: str = "default"
    choices: tuple[str, ...] = ()  # the only values accepted (an empty tuple: any the role takes)

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.field.upper()

    @property
    def schemes(self) -> tuple[str, ...]:
        return tuple(self.backends or ())


UNDER_HOME = "default (under RECPIPE_HOME)"


def _home(values: Mapping[str, str]) -> Path:
    return Path(values["home"]).expanduser().resolve()


def _positive_int(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise ValueError("it must be a whole number of at least 1")
    return int(text)


def _http_url(text: str) -> str:
    if url_scheme(text) not in ("http", "https"):
        raise ValueError("it must be an http:// or https:// URL")
    return text


def _api_key(text: str) -> str:
    if len(text) < 16 or not text.isprintable() or " " in text:
        raise ValueError("it must be at least 16 printable characters without spaces")
    return text


def _seconds_or_off(text: str) -> float:
    value = 0.0 if text.strip() == "0" else _positive_float(text)
    return value


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 <= value < 1:
        raise ValueError("it must be a fraction from 0 to below 1, e.g. 0.05 for 5%")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise ValueError("it must be a number above 0")
    return value


ROLES: dict[str, Role] = {
    r.field: r
    for r in (
        Role("home", "home of every embedded default", "./.recpipe", default=lambda v: "./.recpipe"),
        Role("source_url", "source database",
             "sqlite:///path/source.db, mysql+pymysql://user:pass@host:3306/classicmodels, "
             "postgresql://user:pass@host/db",
             {"sqlite": "sqlite_source:SQLiteSource", "mysql": "mysql_source:MySQLSource",
              "mariadb": "mysql_source:MySQLSource", "postgresql": "postgres_source:PostgresSource",
              "postgres": "postgres_source:PostgresSource"},
             default=lambda v: f"sqlite:///{_home(v) / 'source.db'}", default_origin=UNDER_HOME),
        Role("source_secret", "Secrets Manager secret with the source database's username and password",
             "an ARN or name; its JSON {username, password} completes RECPIPE_SOURCE_URL", parse=str,
             unset="unset: the URL carries its own credentials"),
        Role("lake_url", "lake (training data)", "/path/lake or s3://bucket/prefix", _LAKES,
             default=lambda v: str(_home(v) / "lake"), default_origin=UNDER_HOME),
        Role("artifacts_url", "model artifacts", "/path/ml-artifacts or s3://bucket/prefix", _LAKES,
             default=lambda v: join_url(v["lake_url"], "ml-artifacts"), default_origin="default (<lake>/ml-artifacts)"),
        Role("vectors_url", "vector store", "pgserver:///path/pg (embedded) or postgresql://user:pass@host:5432/db",
             {"pgserver": "pgserver_vectors:EmbeddedPostgres", "postgresql": "postgres_vectors:ServerPostgres",
              "postgres": "postgres_vectors:ServerPostgres"},
             default=lambda v: f"pgserver://{_home(v) / 'pg'}", default_origin=UNDER_HOME),
        Role("vectors_secret", "Secrets Manager secret with the vector database's username and password",
             "an ARN or name, e.g. RDS's managed master secret; completes RECPIPE_VECTORS_URL", parse=str,
             unset="unset: the URL carries its own credentials"),
        Role("stream_url", "event stream", "/path/stream or kinesis://stream-name",
             {"": "local_stream:LocalStream", "file": "local_stream:LocalStream",
              "kinesis": "kinesis_stream:KinesisStream"},
             default=lambda v: str(_home(v) / "stream"), default_origin=UNDER_HOME),
        Role("recommendations_url", "recommendations sink", "/path/recommendations or s3://bucket/prefix",
             _LAKES, default=lambda v: str(_home(v) / "recommendations"), default_origin=UNDER_HOME),
        Role("engine", "ETL engine", "duckdb or spark", default=lambda v: "duckdb", choices=ENGINES),
        Role("spark_master", "Spark master of the local spark engine", "local[*] or spark://host:7077", parse=str,
             default=lambda v: "local[*]"),
        Role("spark_driver_memory", "Spark driver memory", "2g", parse=str, default=lambda v: "2g"),
        Role("spark_jars", "JDBC driver jars for Spark (comma-separated)",
             "/usr/share/java/mariadb-java-client.jar", parse=str),
        Role("serve_ef_search", "HNSW candidates per query (recpipe serve)", "40 (pgvector's default) to 1000",
             parse=_positive_int),
        Role("serve_threads", "database threads per server process (recpipe serve)",
             "one per core, divided among workers", parse=_positive_int),
        Role("serve_reload_every", "seconds between checks for a new model (recpipe serve)", "10",
             parse=_positive_float, default=lambda v: "10"),
        Role("serve_switch_every", "seconds between checks for a promoted or rolled-back model and a started or "
             "stopped experiment (recpipe serve, the stream's transformation)", "1", parse=_positive_float,
             default=lambda v: "1"),
        Role("gate_tolerance", "how much worse than the serving model, relatively, a new model's offline figures "
             "may be and still be promoted by `recpipe vectors load`", "0.05", parse=_share,
             default=lambda v: "0.05"),
        Role("models_keep", "models the vector database keeps loaded (the serving one, the one a rollback "
             "brings back and an experiment's always among them)", "3", parse=_positive_int,
             default=lambda v: "3"),
        Role("serve_impressions_every", "seconds between writes of the service's impression log into the "
             "recommendations sink (recpipe serve); 0 logs nothing", "1", parse=_seconds_or_off,
             default=lambda v: "1"),
        Role("api_key", "API key clients of `recpipe serve` must send (Authorization: Bearer …)",
             "a long random string, e.g. from `python -c 'import secrets; print(secrets.token_urlsafe(32))'`",
             parse=_api_key, secret=True, unset="unset: no key (the service answers anyone who reaches it)"),
        Role("inference_url", "inference service the stream transformation asks instead of pgvector",
             "http://127.0.0.1:8000 or https://<id>.lambda-url.<region>.on.aws/", parse=_http_url,
             unset="unset: the transformation queries pgvector itself"),
    )
}


def mask_url(value: str) -> str:
    """Hide the password in a URL's user-info and any secret-looking query parameter."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return value
    if not parts.scheme:
        return value
    secret_query = any(k.lower() in SECRET_QUERY_KEYS for k, _ in parse_qsl(parts.query))
    has_password = "@" in parts.netloc and ":" in parts.netloc.rsplit("@", 1)[0]
    if not has_password and not secret_query:
        return value  # nothing to hide: keep the URL exactly as written
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":***"
        netloc = f"{userinfo}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, "***" if k.lower() in SECRET_QUERY_KEYS else v) for k, v in pairs])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def url_scheme(value: str) -> str:
    """The base scheme of a URL ("mysql" for "mysql+pymysql://…"); "" for a local path."""
    if "://" not in value and not value.startswith(("pgserver:", "sqlite:")):
        return ""
    return value.split(":", 1)[0].split("+", 1)[0].lower()


def join_url(base: str, *parts: str) -> str:
    """Join path segments onto a directory path or an ``s3://`` / ``file://`` URL."""
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])


@dataclass(frozen=True)
class Settings:
    """Resolved settings: every role has a value, and ``origins`` says where it came from."""

    home: Path
    source_url: str
    lake_url: str
    artifacts_url: str
    vectors_url: str
    stream_url: str
    recommendations_url: str
    engine: str
    origins: Mapping[str, str]
    source_secret: str | None = None  # None: the URL carries its own credentials
    vectors_secret: str | None = None
    spark_master: str = "local[*]"
    spark_driver_memory: str = "2g"
    spark_jars: str | None = None  # None: Debian's JDBC drivers where installed
    serve_ef_search: int | None = None  # None: pgvector's default
    serve_threads: int | None = None  # None: one per core, divided among the workers
    serve_reload_every: float = 10.0
    serve_switch_every: float = 1.0
    gate_tolerance: float = 0.05
    models_keep: int = 3
    serve_impressions_every: float = 1.0  # 0: the service logs no impressions
    inference_url: str | None = None  # None: the transformation uses the model and pgvector in-process
    api_key: str | None = dataclasses.field(default=None, repr=False)  # None: `recpipe serve` needs no key (loopback only)

    def masked(self) -> dict[str, str]:
        """Every setting as text, passwords hidden ("" for an unset option)."""
        return {f: "" if getattr(self, f) is None else "***" if r.secret else mask_url(str(getattr(self, f)))
                for f, r in ROLES.items()}

    def setting(self, field: str) -> str:
        """What to name in an error about ``field``: its flag if it came from one, else its variable."""
        return setting_name(field, self.origins.get(field, ""))

    def environment(self) -> dict[str, str]:
        """These settings as RECPIPE_* variables (for child processes)."""
        return {r.env: str(getattr(self, f)) for f, r in ROLES.items() if getattr(self, f) is not None}


def setting_name(field: str, origin: str) -> str:
    """An error names where the value came from: the flag, or the variable (environment or .env)."""
    return f"--{field.replace('_', '-')}" if origin == "command-line flag" else ROLES[field].env


def load_settings(
    overrides: Mapping[str, str | None] | None = None,
    *,
    env_file: str | os.PathLike[str] | None = ".env",
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Resolve every role: flag override > environment > ``.env`` > embedded default."""
    environ = os.environ if environ is None else environ
    file_values: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        file_values = {k: v for k, v in dotenv_values(env_file).items() if v is not None}
    values: dict[str, str] = {}
    origins: dict[str, str] = {}
    for field, role in ROLES.items():
        flag = (overrides or {}).get(field)
        if flag:
            values[field], origins[field] = flag, "command-line flag"
        elif role.env in environ and environ[role.env] != "":
            values[field], origins[field] = environ[role.env], f"environment {role.env}"
        elif role.env in file_values and file_values[role.env] != "":
            values[field], origins[field] = file_values[role.env], f"{env_file} {role.env}"

    for field, role in ROLES.items():  # in ROLES' order: home first, the lake before the artifacts
        if field not in values and role.default is not None:
            values[field], origins[field] = role.default(values), role.default_origin
    home = _home(values)

    resolved: dict[str, Any] = {}
    for field, role in ROLES.items():
        if field == "home":
            continue
        setting = setting_name(field, origins.get(field, ""))
        if role.parse is not None:
            if field in values:
                resolved[field] = _parse(role, values[field], setting)
            else:
                origins[field] = role.unset
            continue
        _check(role, values[field], setting)
        resolved[field] = values[field]
    for field in ("source_url", "vectors_url"):
        secret = field.replace("_url", "_secret")
        if resolved.get(secret):  # on AWS: the password comes from Secrets Manager, not a variable
            from recpipe.credentials import with_credentials

            resolved[field] = with_credentials(resolved[field], resolved[secret],
                                               setting_name(secret, origins[secret]))
    return Settings(home=home, origins=origins, **resolved)


def _parse(role: Role, value: str, setting: str) -> Any:
    try:
        return role.parse(value) if role.parse else value
    except ValueError as exc:
        shown = "the value given" if role.secret else repr(value)
        raise ConfigError(f"{setting}={shown} cannot be the {role.what}: {exc}",
                          hint=f"use e.g. {role.examples}") from exc


def _check(role: Role, value: str, setting: str) -> None:
    if role.choices:
        if value not in role.choices:
            raise ConfigError(f"{setting}={value!r} is not an {role.what}", hint=f"use one of: {', '.join(role.choices)}")
        return
    check_scheme(role, value, setting)


def check_scheme(role: Role, url: str, setting: str) -> str:
    """``url``'s scheme, if ``role`` accepts it; else a ConfigError naming the setting."""
    scheme = url_scheme(url)
    if scheme not in role.schemes:
        shown_scheme = f"scheme '{scheme}'" if scheme else "a local path"
        raise ConfigError(
            f"{setting}={mask_url(url)!r}: {shown_scheme} is not accepted for the {role.what}",
            hint=f"use e.g. {role.examples}",
        )
    if scheme == "sqlite" and not re.match(r"sqlite(\+\w+)?://", url):
        raise ConfigError(f"{setting}={mask_url(url)!r} is not an SQLite URL: 'sqlite:' takes three slashes",
                          hint="use sqlite:///relative/path.db or sqlite:////absolute/path.db")
    if scheme and scheme not in ("sqlite", "pgserver") and "://" not in url:
        raise ConfigError(f"{setting}={mask_url(url)!r} is not a URL: '{scheme}:' must be followed by '//'",
                          hint=f"use e.g. {role.examples}")
    return scheme
