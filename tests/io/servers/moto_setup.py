"""Prepares a running moto_server for the S3 store tests, with boto3 as an independent client.

Usage:
  moto_setup.py ENDPOINT setup BUCKET PREFIX DIR OUT_JSON
      Creates the IAM user "sfm-test", allowed s3:*, and an access key for it; turns
      authentication on (moto then checks each request's SigV4 signature against IAM's keys and
      refuses unknown keys and wrong secrets); creates BUCKET and uploads every file under DIR as
      PREFIX/<path relative to DIR>, signed with the new key; lets anyone read PREFIX/* (bucket
      policy, for the anonymous-read test, which turns authentication off); writes
      {"access_key_id": ..., "secret_access_key": ...} to OUT_JSON.
  moto_setup.py ENDPOINT auth on|off
      Turns moto's authentication on or off.
"""
import json
import pathlib
import sys
import urllib.request

import boto3
from botocore.config import Config


def set_auth(endpoint, on):
    # moto authenticates once its request count reaches this number: 0 = now, inf = never.
    request = urllib.request.Request(endpoint + "/moto-api/reset-auth", data=b"0" if on else b"inf", method="POST",
                                     headers={"Content-Type": "text/plain"})  # not a form: moto reads the raw body
    urllib.request.urlopen(request, timeout=10).read()


def client(service, endpoint, key_id, secret):
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=key_id,
                        aws_secret_access_key=secret, config=Config(s3={"addressing_style": "path"}))


def setup(endpoint, bucket, prefix, directory, out):
    iam = client("iam", endpoint, "setup", "setup")
    iam.create_user(UserName="sfm-test")
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    iam.put_user_policy(UserName="sfm-test", PolicyName="s3-all", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="sfm-test")["AccessKey"]
    set_auth(endpoint, True)

    s3 = client("s3", endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    s3.create_bucket(Bucket=bucket)
    public_read = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                                           "Resource": f"arn:aws:s3:::{bucket}/{prefix}/*"}]}
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(public_read))
    root = pathlib.Path(directory)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        s3.put_object(Bucket=bucket, Key=prefix + "/" + path.relative_to(root).as_posix(), Body=path.read_bytes())
    pathlib.Path(out).write_text(json.dumps({"access_key_id": key["AccessKeyId"],
                                             "secret_access_key": key["SecretAccessKey"]}))


if __name__ == "__main__":
    if sys.argv[2] == "setup":
        setup(sys.argv[1], *sys.argv[3:7])
    else:
        set_auth(sys.argv[1], sys.argv[3] == "on")
