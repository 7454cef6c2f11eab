"""Other unmodified clients: the AWS CLI (``aws dynamodb ...``) and PynamoDB."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.api.test_app_harness import ServerThread


def aws(server: ServerThread, home: Path, *args: str) -> Any:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "y",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(home / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
        "AWS_PAGER": "",
    }
    done = subprocess.run(
        ["aws", "dynamodb", *args, "--endpoint-url", server.endpoint, "--output", "json"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if done.stdout.strip() else None


@pytest.mark.skipif(shutil.which("aws") is None, reason="the AWS CLI is not installed")
def test_aws_cli_smoke(running: ServerThread, tmp_path: Path) -> None:
    aws(running, tmp_path, "create-table", "--table-name", "cli_table",
        "--attribute-definitions", "AttributeName=id,AttributeType=S",
        "--key-schema", "AttributeName=id,KeyType=HASH", "--billing-mode", "PAY_PER_REQUEST")
    assert "cli_table" in aws(running, tmp_path, "list-tables")["TableNames"]
    aws(running, tmp_path, "put-item", "--table-name", "cli_table",
        "--item", '{"id": {"S": "1"}, "n": {"N": "42"}}')
    got = aws(running, tmp_path, "get-item", "--table-name", "cli_table",
              "--key", '{"id": {"S": "1"}}')
    assert got["Item"]["n"] == {"N": "42"}
    scanned = aws(running, tmp_path, "scan", "--table-name", "cli_table")
    assert scanned["Count"] == 1
    aws(running, tmp_path, "delete-table", "--table-name", "cli_table")


def test_pynamodb_models(running: ServerThread) -> None:
    pynamodb = pytest.importorskip("pynamodb")
    from pynamodb.attributes import (
        ListAttribute,
        MapAttribute,
        NumberAttribute,
        UnicodeAttribute,
        UnicodeSetAttribute,
    )
    from pynamodb.exceptions import PutError
    from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
    from pynamodb.models import Model
    from pynamodb.transactions import TransactWrite

    assert pynamodb.__version__

    class ByOwner(GlobalSecondaryIndex["Thread"]):
        class Meta:
            index_name = "by_owner"
            projection = AllProjection()

        owner = UnicodeAttribute(hash_key=True)

    class Thread(Model):
        class Meta:
            table_name = "pynamo_threads"
            host = running.endpoint
            region = "us-east-1"
            aws_access_key_id = "x"
            aws_secret_access_key = "y"
            billing_mode = "PAY_PER_REQUEST"

        forum = UnicodeAttribute(hash_key=True)
        subject = UnicodeAttribute(range_key=True)
        owner = UnicodeAttribute()
        views = NumberAttribute(default=0)
        tags = UnicodeSetAttribute(null=True)
        notes = ListAttribute(null=True)  # type: ignore[var-annotated]
        extra = MapAttribute(null=True)  # type: ignore[var-annotated]
        by_owner = ByOwner()

    Thread.create_table(wait=True)
    assert Thread.exists()
    for i in range(5):
        Thread(forum="f", subject=f"s{i}", owner="ann" if i % 2 else "bob",
               tags={"a", "b"}, notes=[1, "x"], extra={"k": "v"}).save()
    thread = Thread.get("f", "s1")
    assert thread.owner == "ann" and thread.tags == {"a", "b"}
    thread.update(actions=[Thread.views.add(3), Thread.tags.delete({"a"})])
    assert Thread.get("f", "s1", consistent_read=True).views == 3
    subjects = [t.subject for t in Thread.query("f", Thread.subject.startswith("s"),
                                                 filter_condition=Thread.owner == "bob")]
    assert subjects == ["s0", "s2", "s4"]
    assert [t.subject for t in Thread.by_owner.query("ann")] == ["s1", "s3"]
    assert Thread.count("f") == 5
    with pytest.raises(PutError):
        Thread(forum="f", subject="s0", owner="eve").save(condition=Thread.forum.does_not_exist())
    with TransactWrite(connection=Thread._get_connection().connection) as tx:
        tx.save(Thread(forum="g", subject="t", owner="zed"))
        tx.update(Thread.get("f", "s2"), actions=[Thread.views.set(9)])
    assert Thread.get("f", "s2").views == 9
    with Thread.batch_write() as batch:
        for i in range(30):
            batch.save(Thread(forum="h", subject=f"b{i:02d}", owner="bulk"))
    assert sum(1 for _ in Thread.scan()) == 36
    Thread.get("f", "s0").delete()
    assert Thread.count("f") == 4
    Thread.delete_table()
