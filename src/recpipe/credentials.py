"""A database URL's credentials from AWS Secrets Manager.

On AWS no password sits in an environment variable: ``RECPIPE_VECTORS_SECRET`` (or
``RECPIPE_SOURCE_SECRET``) names a secret whose JSON holds ``username`` and ``password`` (the
shape RDS keeps for a master user it manages), and the URL of the same role is completed with
them when the settings are read. boto3 is imported only then. A server vector database reads
the secret again for each new connection (``current``), so a rotated password is picked up
without a restart.
"""

from __future__ import annotations

import json
from urllib.parse import quote, urlsplit, urlunsplit

from recpipe.errors import ConfigError, ServiceError, require

_FROM_SECRET: dict[str, tuple[str, str]] = {}  # a URL completed here -> (secret id, setting)


def with_credentials(url: str, secret_id: str, setting: str) -> str:
    """``url`` with the user and password of the secret ``secret_id`` (named by ``setting``);
    ``current`` completes it again later."""
    full = _complete(url, secret_id, setting)
    _FROM_SECRET[full] = (secret_id, setting)
    return full


def current(url: str) -> str:
    """``url`` with its secret's password as it is now, if ``with_credentials`` completed it
    (RDS rotates the password it manages, every 7 days by default); other URLs unchanged."""
    source = _FROM_SECRET.get(url)
    return url if source is None else _complete(url, *source)


def _complete(url: str, secret_id: str, setting: str) -> str:
    parts = urlsplit(url)
    if not parts.hostname:
        raise ConfigError(f"{setting} names a secret for a database without a host ({url.split(':')[0]}:)",
                          hint="a secret completes a server URL such as postgresql://host:5432/db; unset it here")
    username, password = credentials(secret_id, setting)
    host = parts.netloc.rpartition("@")[2]
    user = quote(username or parts.username or "", safe="")
    return urlunsplit(parts._replace(netloc=f"{user}:{quote(password, safe='')}@{host}"))


def credentials(secret_id: str, setting: str) -> tuple[str | None, str]:
    """The secret's ``username`` (None if absent) and ``password``."""
    boto3 = require("boto3", "aws", f"reading the Secrets Manager secret {setting} names")
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        answer = boto3.client("secretsmanager").get_secret_value(SecretId=secret_id)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        raise ServiceError(f"cannot read the secret {setting}={secret_id!r}: {code}",
                           hint="check the secret's name or ARN, and that this role may "
                                "secretsmanager:GetSecretValue on it (and kms:Decrypt on its key)") from exc
    except BotoCoreError as exc:
        raise ServiceError(f"cannot reach Secrets Manager for {setting}={secret_id!r}: {exc}",
                           hint="check AWS_REGION and the network (a VPC endpoint or NAT from private subnets)") from exc
    try:
        value = json.loads(answer.get("SecretString") or "")
        password = value["password"]
        if not isinstance(password, str) or not password:
            raise TypeError
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"the secret {setting}={secret_id!r} is not JSON with a 'password'",
                          hint='store {"username": "…", "password": "…"} (RDS-managed secrets have this shape)') from exc
    username = value.get("username")
    return (username if isinstance(username, str) and username else None), password
