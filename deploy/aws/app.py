"""The CDK app. ``python app.py`` synthesizes offline (no AWS account, no Docker) into ``cdk.out`` beside it, or
into ``CDK_OUTDIR``; ``cdk deploy`` runs it through ``cdk.json``. The config file is ``config.yaml`` beside this
file unless the context names another (``cdk deploy -c config=my-config.yaml``).
"""

import os
import sys
from pathlib import Path

import aws_cdk as cdk
from infra.config import ConfigError, load_config
from infra.stack import OrchestratorStack

HERE = Path(__file__).resolve().parent


def main() -> None:
    app = cdk.App(outdir=os.environ.get("CDK_OUTDIR") or str(HERE / "cdk.out"), analytics_reporting=False)
    path = Path(app.node.try_get_context("config") or HERE / "config.yaml")
    try:
        config = load_config(path)
    except (ConfigError, OSError) as error:
        sys.exit(f"config: {error}")
    OrchestratorStack(app, config.stack_name, config=config)
    app.synth()


if __name__ == "__main__":
    main()
