"""SigV4 verification against signatures made by botocore's own signer."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from dynamokv.api.errors import DynamoDBError
from dynamokv.api.sigv4 import AuthConfig, verify_request
from tests.api.test_app_harness import ServerThread

KEYS = AuthConfig({"AKIDEXAMPLE": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"})


def signed(secret: str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", key: str = "AKIDEXAMPLE",
           body: bytes = b"{}", url: str = "http://127.0.0.1:8000/") -> AWSRequest:
    request = AWSRequest(method="POST", url=url, data=body, headers={
        "X-Amz-Target": "DynamoDB_20120810.ListTables",
        "Content-Type": "application/x-amz-json-1.0",
    })
    SigV4Auth(Credentials(key, secret), "dynamodb", "eu-west-1").add_auth(request)
    return request


def verify(request: AWSRequest, *, body: bytes | None = None, now: float | None = None) -> Any:
    headers = {k.lower(): str(v) for k, v in request.headers.items()}
    headers["host"] = "127.0.0.1:8000"
    path, _, query = request.url.split("8000", 1)[1].partition("?")
    data = request.body if body is None else body
    assert isinstance(data, bytes)
    return verify_request(KEYS, "POST", path, query, headers, data, now=now)


def failure(request: AWSRequest, **kw: Any) -> tuple[str, int]:
    with pytest.raises(DynamoDBError) as info:
        verify(request, **kw)
    return info.value.type, info.value.status


def test_good_signature_is_accepted() -> None:
    assert verify(signed()) == "AKIDEXAMPLE"
    assert verify(signed(url="http://127.0.0.1:8000/some/path?b=2&a=1")) == "AKIDEXAMPLE"


def test_unknown_key_wrong_secret_and_tampering() -> None:
    assert failure(signed(key="AKIDOTHER")) == ("UnrecognizedClientException", 400)
    assert failure(signed(secret="wrong")) == ("InvalidSignatureException", 400)
    assert failure(signed(), body=b'{"Limit": 1}') == ("InvalidSignatureException", 400)


def test_expired_signature() -> None:
    assert failure(signed(), now=time.time() + 3600) == ("InvalidSignatureException", 400)
    assert verify(signed(), now=time.time() + 60) == "AKIDEXAMPLE"


def test_missing_or_malformed_authorization() -> None:
    request = signed()
    del request.headers["Authorization"]
    assert failure(request)[0] == "MissingAuthenticationTokenException"
    request = signed()
    request.headers.replace_header("Authorization", "AWS4-HMAC-SHA256 Credential=x")
    assert failure(request)[0] == "IncompleteSignatureException"


def test_no_auth_config_accepts_anything() -> None:
    assert verify_request(None, "POST", "/", "", {}, b"{}") is None


@pytest.fixture(scope="module")
def secured() -> Iterator[ServerThread]:
    server = ServerThread(auth=KEYS)
    try:
        yield server
    finally:
        server.stop()


def test_boto3_against_a_secured_server(secured: ServerThread) -> None:
    good = secured.client(aws_access_key_id="AKIDEXAMPLE",
                          aws_secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                          region_name="ap-south-1")
    assert good.list_tables()["TableNames"] == []
    for key, secret, code in [("AKIDEXAMPLE", "nope", "InvalidSignatureException"),
                              ("AKIDUNKNOWN", "x", "UnrecognizedClientException")]:
        bad = secured.client(aws_access_key_id=key, aws_secret_access_key=secret)
        with pytest.raises(ClientError) as info:
            bad.list_tables()
        assert info.value.response["Error"]["Code"] == code
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
