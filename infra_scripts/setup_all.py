"""Set up the whole AWS deployment in order: bucket -> iam -> glue -> upload_code [-> cluster].

    python -m infra_scripts.setup_all --region eu-west-1 --bucket my-lake [--dry-run]
        [--with-cluster --subnet-id subnet-...]

All steps share one report, so the last line says whether anything changed at all.
"""

from __future__ import annotations

import argparse

from infra_scripts import bucket, emr_cluster, glue, iam, upload_code
from infra_scripts.common import (
    AwsContext,
    Plan,
    add_catalog_arguments,
    add_common_arguments,
    add_kms_argument,
    cli_main,
    new_parser,
)

STEPS = (bucket.run, iam.run, glue.run, upload_code.run)
"""In dependency order: the policies name the bucket, crawlers need their role, code its bucket."""


def build_parser() -> argparse.ArgumentParser:
    parser = new_parser(__doc__)
    add_common_arguments(parser)
    add_catalog_arguments(parser)
    add_kms_argument(parser)
    bucket.add_arguments(parser)
    iam.add_arguments(parser)
    upload_code.add_arguments(parser)
    parser.add_argument(
        "--with-cluster",
        action="store_true",
        help="also create the long-running EMR cluster (see emr_cluster create --help)",
    )
    emr_cluster.add_name_argument(parser)
    emr_cluster.add_create_arguments(parser)
    return parser


def run(args: argparse.Namespace, ctx: AwsContext, plan: Plan) -> None:
    for step in STEPS:
        step(args, ctx, plan)
    if args.with_cluster:
        emr_cluster.run_create(args, ctx, plan)


def main(argv: list[str] | None = None) -> int:
    return cli_main(argv, build_parser(), run)


if __name__ == "__main__":
    raise SystemExit(main())
