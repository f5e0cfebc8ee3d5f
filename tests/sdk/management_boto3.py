"""Drives the local edge's @connections API with boto3, as application code does, and prints
what boto3 made of each answer as one JSON object. The system test `tests/sdk.rs` starts the
edge, sets the environment and checks the output.

  ENDPOINT  the management API (http://127.0.0.1:PORT)
  TOKEN     the management token: the access key id and the secret key
  LIVE_ID   a connection that reads; SLOW_ID one that never reads; GONE_ID one that closed
"""

import datetime
import json
import os

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError


def client(key=None, secret=None):
    key = key or os.environ["TOKEN"]
    return boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=os.environ["ENDPOINT"],
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret or key,
        # One attempt each: an error is seen as the API answered it, not after retries.
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )


api = client()
live, slow, gone = os.environ["LIVE_ID"], os.environ["SLOW_ID"], os.environ["GONE_ID"]
out = {}


def outcome(call, modeled=()):
    """The modeled exception `call` raises (caught by its class, as application code does), the
    code of another error, or "ok"."""
    try:
        call()
        return "ok"
    except modeled as e:
        return type(e).__name__
    except ClientError as e:
        return "unmodeled:" + e.response["Error"]["Code"]


errors = api.exceptions
modeled = (
    errors.GoneException,
    errors.PayloadTooLargeException,
    errors.ForbiddenException,
    errors.LimitExceededException,
)
out["post"] = outcome(lambda: api.post_to_connection(ConnectionId=live, Data=b'{"from":"boto3"}'), modeled)
info = api.get_connection(ConnectionId=live)
out["get"] = {
    "connectedAtIsDate": isinstance(info["ConnectedAt"], datetime.datetime),
    "connectedAt": info["ConnectedAt"].isoformat(),
    "lastActiveAtIsDate": isinstance(info["LastActiveAt"], datetime.datetime),
    "sourceIp": info["Identity"]["SourceIp"],
}
out["gone"] = outcome(lambda: api.post_to_connection(ConnectionId=gone, Data=b"{}"), modeled)
out["getGone"] = outcome(lambda: api.get_connection(ConnectionId=gone), modeled)
out["tooLarge"] = outcome(
    lambda: api.post_to_connection(ConnectionId=live, Data=b"x" * (128 * 1024 + 1)), modeled
)
out["forbidden"] = outcome(lambda: client("not-the-management-token").get_connection(ConnectionId=live), modeled)
# The right key id with the wrong secret: the signature does not match.
out["badSignature"] = outcome(
    lambda: client(os.environ["TOKEN"], "not-the-secret").get_connection(ConnectionId=live), modeled
)
# A connection that never reads: frames pile up until it can take no more.
out["limit"] = "ok"
big = b"y" * (100 * 1024)
for _ in range(2000):
    out["limit"] = outcome(lambda: api.post_to_connection(ConnectionId=slow, Data=big), modeled)
    if out["limit"] != "ok":
        break
out["delete"] = outcome(lambda: api.delete_connection(ConnectionId=live), modeled)
print(json.dumps(out))
