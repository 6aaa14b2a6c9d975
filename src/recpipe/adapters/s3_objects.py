"""Named S3 objects for Arrow, fetched with boto3 (``S3Objects``): a read-only Arrow filesystem.

Given file names, Arrow's own S3 filesystem asks each object's size first (a HEAD a file), and
a connection S3 drops while a body streams is not tried again. ``S3Objects`` fetches each object
Arrow opens in one GET, with boto3's retries (throttling, 500s, dropped connections) and the
body read again when S3 breaks it off, and hands Arrow the bytes. It opens only what Arrow
asks for, a few files at a time (``adapters.scan`` reads groups of named files), so what it
holds is those files' bytes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pyarrow as pa
from pyarrow import fs

BODY_ATTEMPTS = 4  # reads of an object's body S3 broke off, each after boto3's own retries
READ_ONLY = "S3Objects only reads objects it is given the names of"


class S3Objects(fs.FileSystemHandler):
    """Objects of ``bucket`` by key; ``errors(doing)`` turns boto3's failures into recpipe's."""

    def __init__(self, client: Any, bucket: str, errors: Callable[[str], AbstractContextManager[None]]) -> None:
        self.client = client
        self.bucket = bucket
        self.errors = errors

    def get_type_name(self) -> str:
        return "recpipe-s3-objects"

    def equals(self, other: Any) -> bool:
        return isinstance(other, S3Objects) and other.bucket == self.bucket and other.client is self.client

    def normalize_path(self, path: str) -> str:
        return path

    def get_file_info(self, paths: list[str]) -> list[Any]:
        return [self._info(p) for p in paths]

    def _info(self, key: str) -> Any:
        from botocore.exceptions import ClientError

        with self.errors(f"reading {key}"):
            try:
                size = self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"]
            except ClientError as exc:
                if str(exc.response.get("Error", {}).get("Code", "")) in ("404", "NoSuchKey"):
                    return fs.FileInfo(key, fs.FileType.NotFound)
                raise
        return fs.FileInfo(key, fs.FileType.File, size=size)

    def open_input_file(self, path: str) -> Any:
        return pa.BufferReader(self.fetch(path))

    def open_input_stream(self, path: str) -> Any:
        return pa.BufferReader(self.fetch(path))

    def fetch(self, key: str) -> bytes:
        """The object's bytes; its body is read again (``BODY_ATTEMPTS`` in all) if S3 breaks it off."""
        from botocore.exceptions import (
            ConnectionClosedError,
            IncompleteReadError,
            ReadTimeoutError,
            ResponseStreamingError,
        )

        broken = (ConnectionClosedError, IncompleteReadError, ReadTimeoutError, ResponseStreamingError)
        attempt = 1
        with self.errors(f"reading {key}"):
            while True:
                try:
                    return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
                except broken:
                    if attempt == BODY_ATTEMPTS:
                        raise
                    time.sleep(0.05 * 2**attempt)
                    attempt += 1

    def get_file_info_selector(self, selector: Any) -> list[Any]:
        raise NotImplementedError(f"{READ_ONLY}: list them with the lake's list_files")

    def create_dir(self, path: str, recursive: bool) -> None:
        raise NotImplementedError(READ_ONLY)

    def delete_dir(self, path: str) -> None:
        raise NotImplementedError(READ_ONLY)

    def delete_dir_contents(self, path: str, missing_dir_ok: bool = False) -> None:
        raise NotImplementedError(READ_ONLY)

    def delete_root_dir_contents(self) -> None:
        raise NotImplementedError(READ_ONLY)

    def delete_file(self, path: str) -> None:
        raise NotImplementedError(READ_ONLY)

    def move(self, src: str, dest: str) -> None:
        raise NotImplementedError(READ_ONLY)

    def copy_file(self, src: str, dest: str) -> None:
        raise NotImplementedError(READ_ONLY)

    def open_output_stream(self, path: str, metadata: Any) -> Any:
        raise NotImplementedError(READ_ONLY)

    def open_append_stream(self, path: str, metadata: Any) -> Any:
        raise NotImplementedError(READ_ONLY)
