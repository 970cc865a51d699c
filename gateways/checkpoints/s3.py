"""Checkpoints as objects in S3 (or MinIO) through boto3: `s3://bucket/prefix`, written only if absent."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from gateways.checkpoints import CheckpointExists, CheckpointStorageError


class S3Checkpoints:
    def __init__(self, url: str, *, endpoint_url: str | None = None, region: str | None = None) -> None:
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        if not bucket:
            raise ValueError(f"{url!r} names no bucket (s3://bucket/prefix)")
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.where = f"s3://{bucket}/{self.prefix}"
        self._client: Any = boto3.client("s3", endpoint_url=endpoint_url, region_name=region or "us-east-1")

    def _failed(self, error: Exception) -> CheckpointStorageError:
        code = error.response.get("Error", {}).get("Code", "") if isinstance(error, ClientError) else ""
        return CheckpointStorageError(f"S3 {self.where}: {code or type(error).__name__}")

    def names(self) -> list[str]:
        names: list[str] = []
        try:
            for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
                names.extend(item["Key"][len(self.prefix) :] for item in page.get("Contents", []))
        except (BotoCoreError, ClientError) as error:
            raise self._failed(error) from None
        return [n for n in names if "/" not in n]

    def read(self, name: str) -> bytes:
        try:
            body: bytes = self._client.get_object(Bucket=self.bucket, Key=self.prefix + name)["Body"].read()
        except (BotoCoreError, ClientError) as error:
            raise self._failed(error) from None
        return body

    def create(self, name: str, data: bytes) -> None:
        try:
            # A conditional write: S3 refuses it (412) when the key exists, so a checkpoint is never replaced.
            self._client.put_object(
                Bucket=self.bucket, Key=self.prefix + name, Body=data, ContentType="application/json", IfNoneMatch="*"
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412"):
                raise CheckpointExists(f"{self.where}{name} already exists") from None
            raise self._failed(error) from None
        except BotoCoreError as error:
            raise self._failed(error) from None
