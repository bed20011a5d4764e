"""Synthesizing the CDK app for tests with cdk.json's feature flags, and reading back what synth wrote."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INFRA = Path(__file__).resolve().parents[2] / "infra"

STACK = "Pagescribe"
EXISTING_DIGEST = "sha256:" + "ab" * 32
EXISTING_KEY = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"


@dataclass
class Synth:
    """One synthesized variant: its template (dict and assertions view), nag report and CDK context."""

    template: dict[str, Any]
    assertions: Any
    report: dict[str, Any]
    error: str | None
    outdir: Path
    context: dict[str, Any]

    def resources(self, type_name: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.template["Resources"].items() if v["Type"] == type_name}

    def one(self, type_name: str) -> dict[str, Any]:
        found = list(self.resources(type_name).values())
        assert len(found) == 1, f"expected one {type_name}, found {len(found)}"
        return found[0]["Properties"]


def cdk_json_context() -> dict[str, Any]:
    """The feature flags from infra/cdk.json, so tests synthesize what `cdk deploy` would."""
    context: dict[str, Any] = json.loads((INFRA / "cdk.json").read_text())["context"]
    return context


def synthesize(outdir: Path, overrides: dict[str, Any]) -> Synth:
    """Build the app with context ``overrides`` (strings, as `-c` gives them) and read back what it wrote."""
    from aws_cdk.assertions import Template
    from pagescribe_infra.stack import build_app

    context = {**cdk_json_context(), **overrides}
    app = build_app(context=context, outdir=str(outdir))
    error = None
    try:
        app.synth()
    except RuntimeError as exc:  # cdk-nag findings surface as ValidationFailed; the tests report them
        error = str(exc)
    template = json.loads((outdir / f"{STACK}.template.json").read_text())
    report = json.loads((outdir / "validation-report.json").read_text())
    return Synth(template, Template.from_json(template), report, error, outdir, context)
