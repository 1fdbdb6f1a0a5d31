#!/bin/bash
# EMR bootstrap action: install the Python interpreter PySpark is pointed at, and the jobs'
# packages, on every node, with no internet access needed.
#
#   emr_bootstrap.sh VERSION WHEELS_URI [REGION]
#   e.g. emr_bootstrap.sh 3.11 s3://my-lake/scripts/bootstrap/<digest>/wheels/ eu-west-1
#
# EMR 7 runs on Amazon Linux 2023, whose default python3 is 3.9; the spark-env configuration of
# car_rental_platform/aws_names.py sets PYSPARK_PYTHON=/usr/bin/python3.11 (dagster-pipes and the
# jobs' contract.py need 3.10+), which AL2023 ships as a package but does not install. dnf gets it
# from the Amazon Linux repositories, which are S3 buckets of the node's region: a private subnet
# reaches them through its S3 gateway endpoint.
#
# boto3 is what the jobs' Dagster Pipes message writer uses to put its messages in S3. It and its
# dependencies come as the wheels pinned (with their sha256) in
# car_rental_platform/emr_requirements.txt, uploaded beside this script to WHEELS_URI with that
# file as requirements.txt; pip installs them from that folder only (--no-index) and checks
# every hash. REGION is the bucket's, for the copy.
#
# Uploaded content-addressed by infra_scripts/upload_code.py (and by the Dagster EMR resource
# before it creates a transient cluster) to s3://BUCKET/scripts/bootstrap/<digest>/.
set -euo pipefail

USAGE="usage: emr_bootstrap.sh VERSION WHEELS_URI [REGION]"
VERSION="${1:?$USAGE}"
WHEELS_URI="${2:?$USAGE}"
REGION="${3:-}"
WHEELS_DIR="$(mktemp -d)"
trap 'rm -rf "$WHEELS_DIR"' EXIT

sudo dnf install -y "python${VERSION}" "python${VERSION}-pip"
aws s3 cp --recursive --only-show-errors ${REGION:+--region "$REGION"} "$WHEELS_URI" "$WHEELS_DIR"
sudo "python${VERSION}" -m pip install --quiet --no-index --find-links "$WHEELS_DIR" \
    --require-hashes -r "$WHEELS_DIR/requirements.txt"
"python${VERSION}" -c "import boto3, sys; print('bootstrap: python', sys.version.split()[0], 'with boto3', boto3.__version__)"
