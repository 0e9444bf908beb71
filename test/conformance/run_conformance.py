"""Drives the EC2 simulator with boto3/botocore exactly as they ship (no patches) and reports, as JSON on
stdout, what happened: each case's outcome and every raw response's violations of botocore's EC2 model.

Input (JSON on stdin): endpoint, region, accessKey, secretKey, manifestUrl (a readable upload), imageBytes,
volumeSize, missingManifestUrl (a URL that never becomes readable: the task stays Pending).
"""

from __future__ import annotations

import json
import re
import sys
import time
import traceback

import boto3
import botocore
import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from ec2_shapes import check_error, check_output

ARGS = json.load(sys.stdin)
HTTP = urllib3.PoolManager()
cases: list[dict] = []
responses: list[dict] = []  # every raw response seen: operation, status, body


def case(name: str, ok: bool, detail: str = "") -> None:
    cases.append({"name": name, "ok": bool(ok), "detail": detail})


def record(operation_model, response_dict, **_kwargs) -> None:
    responses.append({"operation": operation_model.name, "status": response_dict["status_code"], "body": response_dict["body"]})


def client(secret: str | None = None):
    c = boto3.client(
        "ec2",
        endpoint_url=ARGS["endpoint"],
        region_name=ARGS["region"],
        aws_access_key_id=ARGS["accessKey"],
        aws_secret_access_key=secret or ARGS["secretKey"],
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )
    c.meta.events.register("before-parse.ec2.*", record)
    return c


def raw(params: dict[str, str], method: str = "POST") -> tuple[int, bytes]:
    """A Query request signed by botocore's SigV4Auth as-is, for what a modelled client refuses to send."""
    creds = Credentials(ARGS["accessKey"], ARGS["secretKey"])
    if method == "POST":
        request = AWSRequest(method="POST", url=ARGS["endpoint"] + "/", data=params,
                             headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    else:
        request = AWSRequest(method="GET", url=ARGS["endpoint"] + "/", params=params)
    SigV4Auth(creds, "ec2", ARGS["region"]).add_auth(request)
    prepared = request.prepare()
    res = HTTP.request(prepared.method, prepared.url, body=prepared.body, headers=dict(prepared.headers))
    return res.status, res.data


def expect_error(name: str, fn, code: str, status: int, message: str | None = None) -> None:
    """fn raises ClientError (boto3) or returns (status, body) (raw): the code, status and message must match."""
    try:
        result = fn()
    except ClientError as err:
        got = (err.response["Error"]["Code"], err.response["ResponseMetadata"]["HTTPStatusCode"], err.response["Error"]["Message"])
    else:
        if not isinstance(result, tuple):
            case(name, False, f"succeeded, expected {code}")
            return
        violations, got_code, got_message = check_error(result[1])
        if violations:
            case(name, False, "; ".join(violations))
            return
        got = (got_code, result[0], got_message)
    ok = got[0] == code and got[1] == status and (message is None or re.search(message, got[2]) is not None)
    case(name, ok, f"got {got[0]} {got[1]} {got[2]!r}, expected {code} {status} {message or ''}")


def wait_task(ec2, task_id: str, states: set[str], timeout: float = 90) -> dict:
    deadline = time.time() + timeout
    while True:
        task = ec2.describe_conversion_tasks(ConversionTaskIds=[task_id])["ConversionTasks"][0]
        if task["State"] in states or time.time() > deadline:
            return task
        time.sleep(0.5)


def disk(url: str, size: int | None = None) -> list[dict]:
    size = size or ARGS["imageBytes"]
    return [{"Image": {"Format": "RAW", "Bytes": size, "ImportManifestUrl": url}, "Volume": {"Size": ARGS["volumeSize"]}}]


def scenario() -> None:
    ec2 = client()
    linux = {"Architecture": "x86_64", "InstanceType": "t2.micro"}

    # A Linux import that completes: every describe call then has something to show.
    task = ec2.import_instance(Platform="Linux", Description="conformance", LaunchSpecification=linux, DiskImages=disk(ARGS["manifestUrl"]))["ConversionTask"]
    ids = task["ImportInstance"]
    volume_id = ids["Volumes"][0]["Volume"]["Id"]
    case("ImportInstance returns long IDs (import-i-, i-, vol- + 17 hex digits)",
         re.fullmatch(r"import-i-[0-9a-f]{17}", task["ConversionTaskId"]) and re.fullmatch(r"i-[0-9a-f]{17}", ids["InstanceId"])
         and re.fullmatch(r"vol-[0-9a-f]{17}", volume_id), json.dumps([task["ConversionTaskId"], ids["InstanceId"], volume_id]))
    done = wait_task(ec2, task["ConversionTaskId"], {"completed", "cancelled"})
    case("the boto3 import completes", done["State"] == "completed", f"{done['State']} {done.get('StatusMessage', '')!r}")
    instance_id = ids["InstanceId"]

    reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    inst = reservations[0]["Instances"][0]
    case("DescribeInstances shows the members EC2 has (ami- imageId, vpcId, privateDnsName, hypervisor, virtualizationType)",
         re.fullmatch(r"ami-[0-9a-f]{17}", inst.get("ImageId", "")) and inst.get("VpcId", "").startswith("vpc-")
         and inst.get("PrivateDnsName", "").endswith(".ec2.internal") and inst.get("Hypervisor") == "xen"
         and inst.get("VirtualizationType") == "hvm" and inst["InstanceType"] == "t2.micro" and inst["State"]["Name"] == "stopped",
         json.dumps({k: inst.get(k) for k in ("ImageId", "VpcId", "PrivateDnsName", "Hypervisor", "VirtualizationType", "InstanceType")}))
    ec2.describe_instances(Filters=[{"Name": "instance-state-name", "Values": ["stopped"]}])
    ec2.describe_volumes(VolumeIds=[volume_id])
    ec2.create_tags(Resources=[instance_id, volume_id], Tags=[{"Key": "Name", "Value": "conformance"}])
    tags = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [instance_id, volume_id]}], MaxResults=1000)["Tags"]
    case("CreateTags then DescribeTags by resource-id", len(tags) == 2 and {t["ResourceType"] for t in tags} == {"instance", "volume"}, json.dumps(tags))
    # A data volume (ImportVolume in the instance's zone) attached to the stopped instance.
    data = ec2.import_volume(AvailabilityZone=inst["Placement"]["AvailabilityZone"], Image=disk(ARGS["manifestUrl"])[0]["Image"],
                             Volume={"Size": ARGS["volumeSize"]})["ConversionTask"]
    data_done = wait_task(ec2, data["ConversionTaskId"], {"completed", "cancelled"})
    data_volume = data_done.get("ImportVolume", {}).get("Volume", {}).get("Id", "")
    case("the boto3 ImportVolume completes with its volume", data_done["State"] == "completed" and data_volume.startswith("vol-"),
         json.dumps(data_done, default=str))
    att = ec2.attach_volume(VolumeId=data_volume, InstanceId=instance_id, Device="/dev/sdf")
    case("AttachVolume answers attaching at /dev/sdf", att["State"] == "attaching" and att["Device"] == "/dev/sdf", json.dumps(att, default=str))
    ec2.start_instances(InstanceIds=[instance_id])
    ec2.describe_instance_status(InstanceIds=[instance_id], IncludeAllInstances=True)
    ec2.stop_instances(InstanceIds=[instance_id])
    expect_error("CancelConversionTask on a completed task: DeleteConversionTaskError 400",
                 lambda: ec2.cancel_conversion_task(ConversionTaskId=task["ConversionTaskId"]), "DeleteConversionTaskError", 400)

    # The API reference's own example: Windows on m1.xlarge. Its upload never appears, so it stays Pending.
    win = ec2.import_instance(Platform="Windows", LaunchSpecification={"Architecture": "x86_64", "InstanceType": "m1.xlarge"},
                              DiskImages=disk(ARGS["missingManifestUrl"], 1179593728))["ConversionTask"]
    case("ImportInstance takes the API reference's example (Windows, m1.xlarge)", win["State"] == "active", win["State"])
    ec2.describe_conversion_tasks()
    ec2.cancel_conversion_task(ConversionTaskId=win["ConversionTaskId"], ReasonMessage="conformance")
    vol = ec2.import_volume(AvailabilityZone=f"{ARGS['region']}a", Image=disk(ARGS["missingManifestUrl"])[0]["Image"],
                            Volume={"Size": ARGS["volumeSize"]})["ConversionTask"]
    case("ImportVolume returns an import-vol- task", re.fullmatch(r"import-vol-[0-9a-f]{17}", vol["ConversionTaskId"]) is not None, vol["ConversionTaskId"])
    ec2.cancel_conversion_task(ConversionTaskId=vol["ConversionTaskId"])
    cancelled = wait_task(ec2, vol["ConversionTaskId"], {"cancelled"})
    case("a cancelled ImportVolume task ends cancelled", cancelled["State"] == "cancelled", cancelled["State"])

    # Errors EC2 documents, with their HTTP status.
    expect_error("a malformed conversion task ID: InvalidConversionTaskId.Malformed 400",
                 lambda: ec2.describe_conversion_tasks(ConversionTaskIds=["bogus"]), "InvalidConversionTaskId.Malformed", 400)
    expect_error("an unknown instance: InvalidInstanceID.NotFound 400",
                 lambda: ec2.describe_instances(InstanceIds=["i-0123456789abcdef0"]), "InvalidInstanceID.NotFound", 400)
    expect_error("Linux on a type the guide does not list: InvalidParameterValue 400",
                 lambda: ec2.import_instance(Platform="Linux", LaunchSpecification={"Architecture": "x86_64", "InstanceType": "c5.large"},
                                             DiskImages=disk(ARGS["missingManifestUrl"])),
                 "InvalidParameterValue", 400, r"^Linux is not supported on the requested instance$")
    expect_error("DryRun: DryRunOperation 412", lambda: ec2.describe_instances(DryRun=True), "DryRunOperation", 412)
    expect_error("a wrong secret: AuthFailure 401", lambda: client("not-the-secret").describe_conversion_tasks(), "AuthFailure", 401)

    base = {"Action": "ImportInstance", "Version": "2016-11-15", "Platform": "Windows",
            "LaunchSpecification.Architecture": "x86_64", "DiskImage.1.Image.Format": "RAW", "DiskImage.1.Image.Bytes": "1048576",
            "DiskImage.1.Image.ImportManifestUrl": ARGS["missingManifestUrl"], "DiskImage.1.Volume.Size": "8"}
    expect_error("a misspelt parameter: UnknownParameter 400, nothing created",
                 lambda: raw({**base, "LaunchSpecification.InstanceTyp": "c5.large"}), "UnknownParameter", 400,
                 r"^The parameter LaunchSpecification\.InstanceTyp is not recognized$")
    expect_error("Filter.N on DescribeConversionTasks (the model has no Filters): UnknownParameter 400",
                 lambda: raw({"Action": "DescribeConversionTasks", "Version": "2016-11-15", "Filter.1.Name": "state", "Filter.1.Value.1": "active"}),
                 "UnknownParameter", 400, r"Filter\.1\.")
    expect_error("ImportInstance without an instance type: MissingParameter 400",
                 lambda: raw(base), "MissingParameter", 400, r"LaunchSpecification\.InstanceType")
    expect_error("a version EC2 never had: NoSuchVersion 400",
                 lambda: raw({"Action": "DescribeConversionTasks", "Version": "2099-01-01"}), "NoSuchVersion", 400,
                 r"^The requested version \(2099-01-01\) of service AmazonEC2 does not exist$")
    old_status, old_body = raw({"Action": "DescribeConversionTasks", "Version": "2014-10-01"}, "GET")
    case("an older dated version is served, in its own namespace", old_status == 200 and b"http://ec2.amazonaws.com/doc/2014-10-01/" in old_body,
         f"{old_status} {old_body[:200]!r}")
    responses.append({"operation": "DescribeConversionTasks", "status": old_status, "body": old_body})

    url = ec2.generate_presigned_url("describe_conversion_tasks", Params={}, ExpiresIn=60, HttpMethod="GET")
    res = HTTP.request("GET", url)
    case("a presigned (query-string auth) URL from boto3 works", res.status == 200 and "X-Amz-Signature=" in url, f"{res.status} {url}")
    responses.append({"operation": "DescribeConversionTasks", "status": res.status, "body": res.data})

    ec2.terminate_instances(InstanceIds=[instance_id])


def checker_self_test(model) -> None:
    """The strict walk must catch what the simulator used to send, or its silence would prove nothing."""
    bad = (b'<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId>'
           b'<reservationSet><item><reservationId>r-1</reservationId><instancesSet><item><instanceId>i-1</instanceId>'
           b'<instanceInitiatedShutdownBehavior>stop</instanceInitiatedShutdownBehavior><amiLaunchIndex>x</amiLaunchIndex>'
           b'<instanceState><code>80</code><name>halted</name></instanceState></item></instancesSet></item></reservationSet>'
           b'</DescribeInstancesResponse>')
    found = check_output(model, "DescribeInstances", bad)
    wanted = ["instanceInitiatedShutdownBehavior: not a member of Instance", "amiLaunchIndex: 'x' is not a valid integer",
              "name: 'halted' is not one of InstanceStateName's values"]
    missed = [w for w in wanted if not any(w in f for f in found)]
    case("the shape checker flags unknown members, wrong types and values outside an enum", not missed, f"missed {missed} in {found}")
    _, code, _ = check_error(b"<Response><Errors><Error><Code>X</Code><Message>m</Message></Error></Errors><RequestID>1</RequestID></Response>")
    envelope, _, _ = check_error(b"<ErrorResponse><Error><Code>X</Code></Error></ErrorResponse>")
    case("the error checker reads EC2's envelope and refuses another", code == "X" and len(envelope) > 0, json.dumps(envelope))


def main() -> None:
    model = botocore.session.get_session().get_service_model("ec2")
    checker_self_test(model)
    try:
        scenario()
    except Exception:  # reported, not raised: the TypeScript test shows it
        case("the scenario ran to the end", False, traceback.format_exc())
    violations: list[str] = []
    for r in responses:
        if 200 <= r["status"] < 300:
            violations += check_output(model, r["operation"], r["body"])
        else:
            violations += [f"{r['operation']} error: {v}" for v in check_error(r["body"])[0]]
    json.dump({"botocore": botocore.__version__, "boto3": boto3.__version__, "responses": len(responses),
               "operations": sorted({r["operation"] for r in responses}), "violations": violations, "cases": cases}, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
