"""A lake under an S3 prefix (``s3://bucket/prefix``), on AWS or any S3 API endpoint.

The endpoint, region and credentials come from the standard AWS settings (``AWS_ENDPOINT_URL``,
``AWS_REGION``, profiles, instance roles). S3 has no rename, so publishing uploads the new
files, then the manifest, then deletes the files of the previous version: a reader that
follows ``_manifest.json`` always sees one whole version; a reader that lists the prefix
during a publish may briefly see files of both.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from recpipe.adapters.staged import LocalStaged, S3Staged, Staged
from recpipe.config import mask_url
from recpipe.contracts.artifacts import VERSIONS
from recpipe.contracts.dataset import MANIFEST
from recpipe.contracts.limits import S3_DELETE_BATCH
from recpipe.errors import ConfigError, InputError, RecpipeError, ServiceError, require

LEASE_SECONDS = 60.0  # how long a lease outlives its holder's last renewal


def _boto3() -> Any:
    return require("boto3", "aws", "An s3:// lake")


class S3Lake:
    def __init__(self, url: str, *, setting: str = "RECPIPE_LAKE_URL") -> None:
        rest = url[len("s3://"):]
        self.bucket, _, prefix = rest.partition("/")
        if not self.bucket:
            raise ConfigError(f"{setting}={mask_url(url)!r} names no bucket", hint="use s3://bucket/prefix")
        self.prefix = prefix.strip("/")
        self.url = mask_url(url.rstrip("/"))
        self.setting = setting
        self._client: Any = None

    @classmethod
    def for_artifacts(cls, url: str, *, setting: str) -> tuple[S3Lake, str]:
        """Artifacts under an S3 prefix (or filling a whole bucket, as the seed's ``ml-artifacts``)
        publish as an S3 lake does."""
        return cls(url, setting=setting), ""

    @property
    def client(self) -> Any:
        if self._client is None:
            from botocore.config import Config

            # throttling (503 SlowDown), 500s and dropped connections are retried with backoff;
            # botocore's "max_attempts" counts the retries only, "total_max_attempts" every try
            self._client = _boto3().client("s3", config=Config(retries={"mode": "standard",
                                                                        "total_max_attempts": self._attempts()},
                                                               connect_timeout=10, read_timeout=60))
        return self._client

    @staticmethod
    def _attempts() -> int:
        """Tries per S3 request (boto3's, every read and write): AWS_MAX_ATTEMPTS, else 6."""
        return int(os.environ.get("AWS_MAX_ATTEMPTS") or 6)

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Any S3 failure while ``doing`` as one clear RecpipeError (after the client's retries)."""
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        try:
            yield
        except NoCredentialsError as exc:
            raise ServiceError(f"no AWS credentials for {self.url} ({doing})",
                               hint="set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY") from exc
        except (ClientError, S3UploadFailedError) as exc:  # upload_file wraps the ClientError
            answer = exc if isinstance(exc, ClientError) else exc.__cause__
            code = str(answer.response.get("Error", {}).get("Code", "")) if isinstance(answer, ClientError) else ""
            if code == "NoSuchBucket" or (code == "404" and doing.startswith("checking")):
                raise InputError(f"the S3 bucket {self.bucket!r} of {self.url} does not exist",
                                 hint=f"create it, or set {self.setting} to an existing bucket") from exc
            if code in ("403", "AccessDenied"):
                raise ServiceError(f"access to the S3 bucket {self.bucket!r} is denied ({doing})",
                                   hint="grant s3:ListBucket, s3:GetObject, s3:PutObject and s3:DeleteObject") from exc
            raise ServiceError(f"S3 error {doing} at {self.url}: {code or exc}",
                               hint="retry; check the bucket, the credentials and the permissions") from exc
        except BotoCoreError as exc:
            raise ServiceError(f"cannot reach S3 for {self.url} ({doing}): {exc}",
                               hint="check AWS_ENDPOINT_URL and the network, then retry") from exc

    def _key(self, *parts: str) -> str:
        return "/".join(p.strip("/") for p in (self.prefix, *parts) if p)

    def location(self, name: str) -> str:
        return f"s3://{self.bucket}/{self._key(name)}"

    def check_writable(self) -> None:
        with self._errors("checking the bucket"):
            self.client.head_bucket(Bucket=self.bucket)

    @contextmanager
    def stage(self, name: str, *, remote: bool = False) -> Iterator[Staged]:
        """A local temporary directory, or with ``remote`` a prefix under ``_staging/`` for an
        engine that writes to S3 itself (Spark on a Glue cluster)."""
        self.check_writable()
        if remote:
            staged = S3Staged(self.client, self.bucket, self._key("_staging", f"{name}-{uuid.uuid4().hex[:12]}"))
            try:
                yield staged
            finally:
                self._delete(list(self._list(staged.prefix + "/")))
            return
        path = Path(tempfile.mkdtemp(prefix=f"recpipe-{name}-"))
        try:
            yield LocalStaged(path)
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def publish(self, name: str, staged: Staged, *, manifest: str = MANIFEST) -> None:
        """S3 has no rename: the new objects are written over the old ones, the manifest last.
        The objects about to be overwritten are copied aside first (server-side), so that a
        publish that fails midway (after the client's retries) puts the previous version back
        and removes what it added: readers never keep a mix."""
        base = self._key(name)
        kept = (self._key("_staging") + "/", self._key(VERSIONS) + "/")  # staging; the model registry
        old = {k for k in self._list(f"{base}/" if base else "") if not k.startswith(kept)}
        rel = [r for r in staged.files() if r != manifest]
        keys = {r: self._key(name, r) for r in [*rel, manifest]}
        if manifest not in staged.files():
            keys.pop(manifest)
        if isinstance(staged, LocalStaged):
            def put(r: str) -> None:
                self.client.upload_file(str(staged.path / r), self.bucket, keys[r])
        else:
            assert isinstance(staged, S3Staged)  # noqa: S101 (the only other kind)
            remote = staged

            def put(r: str) -> None:
                self._copy(f"{remote.prefix}/{r}", keys[r], bucket=remote.bucket)
        doing = f"publishing {name or 'the artifacts'}"
        aside = self._key("_staging", f"{name or 'artifacts'}-previous-{uuid.uuid4().hex[:12]}")
        overwritten = sorted(old & set(keys.values()))
        try:
            with self._errors(doing):
                self._each(lambda k: self._copy(k, f"{aside}/{k}"), overwritten)
            try:
                with self._errors(doing):
                    self._each(put, rel)
                    if manifest in keys:
                        put(manifest)  # last: it names the version that is now whole
            except BaseException as failed:
                self._roll_back(aside, overwritten, sorted(set(keys.values()) - old), failed)
                raise
        finally:
            self._delete(list(self._list(f"{aside}/")))
        self._delete(sorted(old - set(keys.values())))

    def _copy(self, source: str, target: str, *, bucket: str | None = None) -> None:
        self.client.copy_object(Bucket=self.bucket, Key=target, CopySource={"Bucket": bucket or self.bucket,
                                                                            "Key": source})

    @staticmethod
    def _each(fn: Callable[[str], None], items: list[str]) -> None:
        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(fn, items))

    def _roll_back(self, aside: str, overwritten: list[str], added: list[str], failed: BaseException) -> None:
        """Put the overwritten objects back and delete the added ones; if that fails too, say so."""
        try:
            with self._errors("putting the previous version back"):
                self._each(lambda k: self._copy(f"{aside}/{k}", k), overwritten)
                self._delete_batches(added)
        except RecpipeError as exc:
            raise ServiceError(f"{failed}; putting the previous version back failed too ({exc.message}): "
                               f"{self.url} may hold a mix of versions",
                               hint="run the stage again once S3 answers: it publishes a whole version") from failed

    def _delete(self, keys: list[str]) -> None:
        with self._errors("deleting old objects"):
            self._delete_batches(keys)

    def _delete_batches(self, keys: list[str]) -> None:
        for i in range(0, len(keys), S3_DELETE_BATCH):
            answer = self.client.delete_objects(Bucket=self.bucket, Delete={
                "Objects": [{"Key": k} for k in keys[i:i + S3_DELETE_BATCH]], "Quiet": True})
            refused = answer.get("Errors") or []  # quiet mode answers only the keys it did not delete
            if refused:
                raise ServiceError(f"S3 did not delete {len(refused)} object(s) of {self.url}, e.g. "
                                   f"{refused[0].get('Key')}: {refused[0].get('Code')}",
                                   hint="retry; check s3:DeleteObject on the bucket")

    def _list(self, prefix: str) -> Iterator[str]:
        with self._errors(f"listing {prefix or '/'}"):
            pages = list(self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix))
        for page in pages:
            for obj in page.get("Contents", []):
                yield obj["Key"]

    def dataset(self, name: str, files: list[str], *, partitioning: Any = None, schema: Any = None) -> Any:
        """Each file fetched by boto3, a GET each (``S3Objects``): Arrow's own S3 client asks
        each named file's size first, and does not read again a body S3 broke off."""
        import pyarrow.dataset as ds
        from pyarrow import fs

        from recpipe.adapters.s3_objects import S3Objects

        objects = fs.PyFileSystem(S3Objects(self.client, self.bucket, self._errors))
        return ds.dataset([self._key(f) for f in files], format="parquet", partitioning=partitioning,
                          filesystem=objects, schema=schema, partition_base_dir=self._key(name))

    def read_bytes(self, relpath: str) -> bytes | None:
        from botocore.exceptions import ClientError

        with self._errors(f"reading {relpath}"):
            try:
                return self.client.get_object(Bucket=self.bucket, Key=self._key(relpath))["Body"].read()
            except ClientError as exc:
                if str(exc.response.get("Error", {}).get("Code", "")) in ("NoSuchKey", "404"):
                    return None
                raise

    def write_bytes(self, relpath: str, data: bytes) -> None:
        """Write one object (S3 puts are atomic)."""
        with self._errors(f"writing {relpath}"):
            self.client.put_object(Bucket=self.bucket, Key=self._key(relpath), Body=data)

    def write_file(self, relpath: str, source: Path) -> None:
        """Upload one file (in parts past boto3's threshold: the object appears when all are in)."""
        with self._errors(f"writing {relpath}"):
            self.client.upload_file(str(source), self.bucket, self._key(relpath))

    def list_files(self, prefix: str = "") -> list[str]:
        """Keys under ``prefix``, relative to this lake's prefix."""
        root = f"{self.prefix}/" if self.prefix else ""
        return sorted(k[len(root):] for k in self._list(root + prefix.lstrip("/")))

    def read_json(self, relpath: str) -> dict[str, Any] | None:
        data = self.read_bytes(relpath)
        return None if data is None else json.loads(data)

    @contextmanager
    def hold(self, relpath: str, what: str, *, ttl: float = LEASE_SECONDS) -> Iterator[None]:
        """A lease on ``relpath`` while ``what`` runs: created only if absent (a conditional
        put), renewed every ``ttl / 3`` seconds, deleted at the end. Another holder is refused
        at once; a lease left by a killed process is taken over once it has expired."""
        from botocore.exceptions import ClientError

        me = f"pid {os.getpid()} on {os.uname().nodename}, {uuid.uuid4().hex[:8]}"

        def lease() -> bytes:
            return json.dumps({"holder": me, "expires": time.time() + ttl}).encode()

        for attempt in range(2):
            try:
                with self._errors(f"taking the lease {relpath}"):
                    try:
                        self.client.put_object(Bucket=self.bucket, Key=self._key(relpath), Body=lease(),
                                               IfNoneMatch="*")
                        break
                    except ClientError as exc:
                        if str(exc.response.get("Error", {}).get("Code", "")) not in ("PreconditionFailed", "412"):
                            raise
                held = json.loads(self.read_bytes(relpath) or b"{}")
            except ValueError:
                held = {}
            if attempt == 0 and float(held.get("expires", 0)) < time.time():
                with self._errors(f"taking over the expired lease {relpath}"):
                    self.client.delete_object(Bucket=self.bucket, Key=self._key(relpath))
                continue
            raise InputError(f"{what} is already running ({held.get('holder', 'another process')}) into {self.url}",
                             hint="wait for it to end or stop it; one at a time keeps the objects and the "
                                  f"counts exact (a killed one's lease expires within {ttl:.0f} s)")
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(ttl / 3):
                with suppress(RecpipeError):
                    self.write_bytes(relpath, lease())

        renewer = threading.Thread(target=renew, name="s3-lease", daemon=True)
        renewer.start()
        try:
            yield
        finally:
            stop.set()
            renewer.join()
            with suppress(RecpipeError), self._errors(f"releasing the lease {relpath}"):
                self.client.delete_object(Bucket=self.bucket, Key=self._key(relpath))
