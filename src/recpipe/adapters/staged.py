"""Where an engine writes a dataset before it is published: a local directory or an S3 prefix.

Both offer what the publish step needs to check a staged dataset without trusting the
engine: the file list, each file's size and digest, a file's Parquet schema, and a way to
add the manifest.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from recpipe.contracts.dataset import MANIFEST
from recpipe.contracts.limits import S3_DELETE_BATCH

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True)
class WrittenFile:
    path: str  # relative to the dataset root, with "/"
    rows: int | None  # None where counting would mean reading every file remotely
    size: int
    digest: str  # sha256 of the bytes (local) or the S3 ETag (remote)


class Staged(Protocol):
    location: str  # what the engine writes to: a directory path or an s3:// URL

    def files(self) -> list[str]:
        """Relative paths of the staged files; engine markers (_SUCCESS, .crc) are removed."""
        ...

    def describe(self, relpath: str) -> WrittenFile: ...

    def read_schema(self, relpath: str) -> pa.Schema: ...

    def write_text(self, relpath: str, text: str) -> None: ...


class LocalStaged:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.location = str(path)

    def files(self) -> list[str]:
        found = []
        for p in self.path.rglob("*"):
            if not p.is_file():
                continue
            if (p.name.startswith("_") and p.name != MANIFEST) or p.name.endswith(".crc"):
                p.unlink()  # Spark's _SUCCESS, Hadoop's checksums: not part of the dataset
                continue
            found.append(p.relative_to(self.path).as_posix())
        return sorted(found)

    def describe(self, relpath: str) -> WrittenFile:
        data = (self.path / relpath).read_bytes()
        import pyarrow.parquet as pq

        rows = pq.read_metadata(self.path / relpath).num_rows
        return WrittenFile(relpath, rows, len(data), hashlib.sha256(data).hexdigest())

    def read_schema(self, relpath: str) -> pa.Schema:
        import pyarrow.parquet as pq

        return pq.read_schema(self.path / relpath)

    def write_text(self, relpath: str, text: str) -> None:
        (self.path / relpath).write_text(text, encoding="utf-8")


class S3Staged:
    """A staging prefix in S3, for engines that write there themselves (Spark on Glue)."""

    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self.client, self.bucket, self.prefix = client, bucket, prefix.strip("/")
        self.location = f"s3://{bucket}/{self.prefix}"
        self._objects: dict[str, dict[str, Any]] = {}

    def files(self) -> list[str]:
        self._objects = {}
        doomed = []
        for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix + "/"):
            for obj in page.get("Contents", []):
                rel = obj["Key"][len(self.prefix) + 1:]
                name = rel.rsplit("/", 1)[-1]
                if (name.startswith("_") and name != MANIFEST) or name.endswith(".crc") \
                        or rel.endswith("_$folder$"):
                    doomed.append(obj["Key"])
                else:
                    self._objects[rel] = obj
        for i in range(0, len(doomed), S3_DELETE_BATCH):
            self.client.delete_objects(Bucket=self.bucket, Delete={
                "Objects": [{"Key": k} for k in doomed[i:i + S3_DELETE_BATCH]], "Quiet": True})
        return sorted(self._objects)

    def describe(self, relpath: str) -> WrittenFile:
        obj = self._objects.get(relpath) or self.client.head_object(
            Bucket=self.bucket, Key=f"{self.prefix}/{relpath}")
        size = obj.get("Size", obj.get("ContentLength")) or 0
        return WrittenFile(relpath, None, int(size), str(obj["ETag"]).strip('"'))

    def read_schema(self, relpath: str) -> pa.Schema:
        body = self.client.get_object(Bucket=self.bucket, Key=f"{self.prefix}/{relpath}")["Body"].read()
        import pyarrow as pa
        import pyarrow.parquet as pq

        return pq.read_schema(pa.BufferReader(body))

    def write_text(self, relpath: str, text: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=f"{self.prefix}/{relpath}", Body=text.encode())
