"""Upload the Spark jobs and their ``--py-files`` zip to ``s3://BUCKET/scripts/<digest>/``.

    python -m infra_scripts.upload_code --region eu-west-1 --bucket my-lake [--dry-run]

Also uploads the EMR bootstrap action ``emr_bootstrap.sh`` (it installs the Python PySpark runs
on, and the jobs' packages from the wheels pinned in ``emr_requirements.txt``) with those wheels
to ``s3://BUCKET/scripts/bootstrap/<digest>/``. Uploads are content-addressed (see
``code_bundle``): unchanged code uploads nothing. The wheels are downloaded (pip, from PyPI or
the index pip is configured with) only when that folder is not in the bucket yet, once per pin
set into ``~/.cache/car-rental-platform/emr-wheels/``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from botocore.client import BaseClient

from car_rental_platform.code_bundle import (
    bootstrap_key,
    build_bundle,
    bundle_keys,
    missing_keys,
    read_pins,
    s3_object_exists,
    upload_bootstrap,
    wheels_uri,
)
from infra_scripts.common import (
    AwsContext,
    Plan,
    add_common_arguments,
    cli_main,
    new_parser,
)
from spark_jobs.contract import Zone


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scripts-prefix",
        default=Zone.SCRIPTS.value,
        help="key prefix of the code in the bucket (default: %(default)s)",
    )


def run(args: argparse.Namespace, ctx: AwsContext, plan: Plan) -> None:
    s3 = ctx.client("s3")
    with tempfile.TemporaryDirectory(prefix="car-rental-bundle-") as tmp:
        bundle = build_bundle(Path(tmp))
        plan.note(f"code bundle {bundle.digest}: {', '.join(bundle.files)}")
        missing = missing_keys(s3, args.bucket, bundle, prefix=args.scripts_prefix)
        for name, key in bundle_keys(bundle, args.scripts_prefix).items():
            uri = f"s3://{args.bucket}/{key}"
            if key not in missing.values():
                plan.ok("s3 code object", uri)
                continue
            path = str(bundle.files[name])
            plan.change(
                "upload",
                "s3 code object",
                uri,
                lambda path=path, key=key: s3.upload_file(path, args.bucket, key),
            )
    ensure_bootstrap_script(s3, plan, bucket=args.bucket, prefix=args.scripts_prefix)


def ensure_bootstrap_script(s3: BaseClient, plan: Plan, *, bucket: str, prefix: str) -> str:
    """Upload the EMR bootstrap action and its wheels unless that version is in S3.

    Returns the script's URI. A dry run downloads nothing: the folder's name is known from the
    script and the pins alone.
    """
    key = bootstrap_key(prefix)
    uri = f"s3://{bucket}/{key}"
    if s3_object_exists(s3, bucket, key):
        plan.ok("s3 code object", uri)
    else:
        wheels = wheels_uri(bucket, prefix)
        plan.change(
            "upload",
            "s3 code object",
            uri,
            lambda: upload_bootstrap(s3, bucket, prefix=prefix),
            detail=f"EMR bootstrap action, and {len(read_pins())} pinned wheels to {wheels}",
        )
    return uri


def build_parser() -> argparse.ArgumentParser:
    parser = new_parser(__doc__)
    add_common_arguments(parser)
    add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    return cli_main(argv, build_parser(), run)


if __name__ == "__main__":
    raise SystemExit(main())
