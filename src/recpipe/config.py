"""The one settings object: a URL per backend role, read at entry points and passed down.

Each role comes from one ``RECPIPE_*`` environment variable (or a ``.env`` file, or a
command-line flag); every role has an embedded default under ``RECPIPE_HOME`` that needs no
server and no account. The README's Configuration section lists them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from dotenv import dotenv_values

from recpipe.contracts.dataset import ENGINES
from recpipe.errors import ConfigError

ENV_PREFIX = "RECPIPE_"
SECRET_QUERY_KEYS = {"password", "pass", "pwd", "secret", "token", "aws_secret_access_key"}


@dataclass(frozen=True)
class Role:
    field: str
    what: str
    schemes: tuple[str, ...]  # accepted URL schemes; "" means a plain local path
    examples: str

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.field.upper()


ROLES: dict[str, Role] = {
    r.field: r
    for r in (
        Role("home", "home of every embedded default", ("",), "./.recpipe"),
        Role(
            "source_url",
            "source database",
            ("sqlite", "mysql", "mariadb", "postgresql", "postgres"),
            "sqlite:///path/source.db, mysql+pymysql://user:pass@host:3306/classicmodels, "
            "postgresql://user:pass@host/db",
        ),
        Role("lake_url", "lake (training data)", ("", "file", "s3"), "/path/lake or s3://bucket/prefix"),
        Role("artifacts_url", "model artifacts", ("", "file", "s3"), "/path/ml-artifacts or s3://bucket/prefix"),
        Role(
            "vectors_url",
            "vector store",
            ("pgserver", "postgresql", "postgres"),
            "pgserver:///path/pg (embedded) or postgresql://user:pass@host:5432/db",
        ),
        Role("stream_url", "event stream", ("", "file", "kinesis"), "/path/stream or kinesis://stream-name"),
        Role(
            "recommendations_url",
            "recommendations sink",
            ("", "file", "s3"),
            "/path/recommendations or s3://bucket/prefix",
        ),
        Role("engine", "ETL engine", (), "duckdb or spark"),
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

    def masked(self) -> dict[str, str]:
        return {f: mask_url(str(getattr(self, f))) for f in ROLES}


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

    home = Path(values.get("home") or "./.recpipe").expanduser().resolve()
    origins.setdefault("home", "default")
    defaults = {
        "source_url": f"sqlite:///{home / 'source.db'}",
        "lake_url": str(home / "lake"),
        "vectors_url": f"pgserver://{home / 'pg'}",
        "stream_url": str(home / "stream"),
        "recommendations_url": str(home / "recommendations"),
        "engine": "duckdb",
    }
    for field, default in defaults.items():
        if field not in values:
            values[field], origins[field] = default, "default (under RECPIPE_HOME)"
    if "artifacts_url" not in values:
        values["artifacts_url"] = join_url(values["lake_url"], "ml-artifacts")
        origins["artifacts_url"] = "default (<lake>/ml-artifacts)"
    origins["engine"] = origins["engine"].replace(" (under RECPIPE_HOME)", "")

    for field, role in ROLES.items():
        if field != "home":
            _check(role, values[field])
    return Settings(home=home, origins=origins, **{k: v for k, v in values.items() if k != "home"})


def _check(role: Role, value: str) -> None:
    shown = mask_url(value)
    if role.field == "engine":
        if value not in ENGINES:
            raise ConfigError(
                f"{role.env}={value!r} is not an ETL engine", hint=f"use one of: {', '.join(ENGINES)}"
            )
        return
    scheme = url_scheme(value)
    if scheme not in role.schemes:
        shown_scheme = f"scheme '{scheme}'" if scheme else "a local path"
        raise ConfigError(
            f"{role.env}={shown!r}: {shown_scheme} is not accepted for the {role.what}",
            hint=f"use e.g. {role.examples}",
        )
