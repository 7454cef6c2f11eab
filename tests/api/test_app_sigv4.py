"""SigV4 verification against signatures made by botocore's own signer."""

from __future__ import annotations

import calendar
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from dynamokv.api.errors import DynamoDBError
from dynamokv.api.sigv4 import AuthConfig, load_credentials, verify_request
from dynamokv.errors import ConfigError
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


def open_verify(request: AWSRequest, now: float | None = None) -> str | None:
    headers = {k.lower(): str(v) for k, v in request.headers.items()}
    return verify_request(None, "POST", "/", "", headers, b"{}", now=now)


def open_failure(request: AWSRequest, now: float | None = None) -> tuple[str, str]:
    with pytest.raises(DynamoDBError) as info:
        open_verify(request, now)
    return info.value.type, info.value.message


def test_the_open_server_serves_an_unsigned_request_unchecked() -> None:
    assert verify_request(None, "POST", "/", "", {}, b"{}") is None


def test_the_open_server_accepts_any_key_and_secret_of_a_signed_request() -> None:
    assert open_verify(signed(key="ANYONE", secret="anything")) == "ANYONE"
    assert open_verify(signed(key="ANYONE", secret="else")) == "ANYONE"  # seen before


def test_the_open_server_checks_a_signed_requests_form_and_date() -> None:
    request = signed()
    stamp = request.headers["X-Amz-Date"]
    signed_at = calendar.timegm(time.strptime(stamp, "%Y%m%dT%H%M%SZ"))
    assert open_verify(request, now=signed_at + 60) == "AKIDEXAMPLE"
    kind, text = open_failure(request, now=signed_at + 3600)  # also once the form was seen
    assert kind == "InvalidSignatureException" and text.startswith("Signature expired: ")
    kind, text = open_failure(request, now=signed_at - 3600)
    assert kind == "InvalidSignatureException" and text.startswith("Signature not yet current: ")
    del request.headers["Authorization"]  # an X-Amz-Date alone is a signing attempt
    assert open_failure(request)[0] == "MissingAuthenticationTokenException"
    request = signed()
    request.headers.replace_header("Authorization", str(request.headers["Authorization"])
                                   .replace("/dynamodb/", "/s3/"))
    assert open_failure(request)[0] == "InvalidSignatureException"
    request = signed()
    request.headers.replace_header("Authorization", "AWS4-HMAC-SHA256 Credential=x")
    assert open_failure(request)[0] == "IncompleteSignatureException"


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


def message(request: AWSRequest, **kw: Any) -> str:
    with pytest.raises(DynamoDBError) as info:
        verify(request, **kw)
    return info.value.message


def test_expired_and_future_wording() -> None:
    request = signed()
    stamp = request.headers["X-Amz-Date"]
    signed_at = calendar.timegm(time.strptime(stamp, "%Y%m%dT%H%M%SZ"))
    text = message(request, now=signed_at + 3600)
    assert text == (f"Signature expired: {stamp} is now earlier than "
                    f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(signed_at + 2700))} "
                    f"({time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(signed_at + 3600))} - 15 min.)")
    assert message(request, now=signed_at - 3600).startswith(
        f"Signature not yet current: {stamp} is still later than ")


def test_incomplete_and_scope_wording() -> None:
    request = signed()
    request.headers.replace_header("Authorization", "AWS4-")
    assert message(request) == (
        "Authorization header requires 'Credential' parameter. "
        "Authorization header requires 'Signature' parameter. "
        "Authorization header requires 'SignedHeaders' parameter. Authorization=AWS4-")
    request = signed()
    request.headers.replace_header("Authorization", "AWS4")
    assert failure(request) == ("MissingAuthenticationTokenException", 400)
    request = signed()
    request.headers.replace_header("Authorization", str(request.headers["Authorization"])
                                   .replace("/dynamodb/", "/"))
    assert message(request).startswith("Credential must have exactly 5 slash-delimited elements")
    request = signed()
    request.headers.replace_header("Authorization", str(request.headers["Authorization"])
                                   .replace("/dynamodb/", "/s3/"))
    assert message(request) == "Credential should be scoped to correct service: 'dynamodb'."
    request = signed()
    request.headers.replace_header("X-Amz-Date", "201")
    assert message(request).startswith("Date must be in ISO-8601 'basic format'. Got '201'.")


def test_signature_mismatch_shows_the_canonical_request() -> None:
    text = message(signed(secret="wrong"))
    assert text.startswith("The request signature we calculated does not match the signature "
                           "you provided.")
    assert "The Canonical String for this request should have been\n'POST\n/\n" in text


def test_session_tokens_are_refused() -> None:
    request = signed()
    request.headers["X-Amz-Security-Token"] = "token"
    assert failure(request) == ("UnrecognizedClientException", 400)


def test_credentials_file(tmp_path: Any) -> None:
    path = tmp_path / "keys.txt"
    path.write_text("# local keys\nAKID1 secret1\n\nAKID2  secret2  # second\n")
    assert dict(load_credentials(path).credentials) == {"AKID1": "secret1", "AKID2": "secret2"}
    for text, words in [("AKID1\n", "line 1: expected ACCESS_KEY_ID SECRET"),
                        ("A s\nA t\n", "line 2: A is listed twice"),
                        ("# nothing\n", "no access keys")]:
        path.write_text(text)
        with pytest.raises(ConfigError, match=words):
            load_credentials(path)
    with pytest.raises(ConfigError, match="cannot read it"):
        load_credentials(tmp_path / "missing.txt")
