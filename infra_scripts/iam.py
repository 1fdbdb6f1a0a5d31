"""IAM roles and least-privilege policies for EMR, the Glue crawlers and the Dagster deployment.

This command makes IAM match the desired state of ``iam_roles`` through ``iam_apply``; the
policies themselves are in ``iam_policies``, written with the vocabulary of ``iam_documents``.

    python -m infra_scripts.iam --region eu-west-1 --bucket my-lake [--dry-run]
"""

from __future__ import annotations

import argparse

from infra_scripts.common import (
    AwsContext,
    Plan,
    add_catalog_arguments,
    add_common_arguments,
    add_kms_argument,
    cli_main,
    new_parser,
    resolve_kms_key_arn,
)
from infra_scripts.iam_apply import ensure_github_oidc_provider, ensure_managed_policy, ensure_role
from infra_scripts.iam_policies import DEFAULT_LANDING_PREFIX
from infra_scripts.iam_roles import DAGSTER_RUNNER_ROLE, GITHUB_ACTIONS_ROLE, desired_state


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--runner-principal-arn",
        default=None,
        help=f"also create role {DAGSTER_RUNNER_ROLE} with the runner policy, "
        "assumable by this principal (the Dagster deployment's role or user ARN)",
    )
    parser.add_argument(
        "--github-repository",
        default=None,
        metavar="OWNER/REPO",
        help=f"also create role {GITHUB_ACTIONS_ROLE} with the runner policy for the CI "
        "workflow, assumable through GitHub's OIDC provider (created if missing) by this "
        "repository's workflows on --github-branch only",
    )
    parser.add_argument(
        "--github-branch",
        default="main",
        help="the one branch whose workflows may assume the CI role (default: %(default)s)",
    )
    parser.add_argument(
        "--landing-prefix",
        default=DEFAULT_LANDING_PREFIX,
        help="key prefix the CSV exports land under, which the runner may read "
        "(CAR_RENTAL_LANDING_PREFIX; default: %(default)s)",
    )


def run(args: argparse.Namespace, ctx: AwsContext, plan: Plan) -> None:
    iam = ctx.client("iam")
    policies, roles = desired_state(
        bucket=args.bucket,
        region=ctx.region,
        account=ctx.account_id,
        partition=ctx.partition,
        database=args.database,
        crawler_prefix=args.crawler_prefix,
        workgroup=args.workgroup,
        landing_prefix=args.landing_prefix,
        kms_key_arn=resolve_kms_key_arn(ctx, args.kms_key_id),
        runner_principal_arn=args.runner_principal_arn,
        github_repository=args.github_repository,
        github_branch=args.github_branch,
    )
    if args.github_repository:
        ensure_github_oidc_provider(iam, plan, account=ctx.account_id, partition=ctx.partition)
    for spec in policies:
        ensure_managed_policy(iam, plan, spec, account=ctx.account_id, partition=ctx.partition)
    for role in roles:
        ensure_role(iam, plan, role)


def build_parser() -> argparse.ArgumentParser:
    parser = new_parser(__doc__)
    add_common_arguments(parser)
    add_catalog_arguments(parser)
    add_kms_argument(parser)
    add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    return cli_main(argv, build_parser(), run)


if __name__ == "__main__":
    raise SystemExit(main())
