#!/usr/bin/env python3
"""CDK entry point: `cdk synth|deploy -c key=value ...` (see README.md for the keys)."""

from pagescribe_infra.stack import build_app

build_app().synth()
