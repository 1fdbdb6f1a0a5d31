#!/bin/bash
# EMR bootstrap action: install the Python interpreter PySpark is pointed at, on every node.
#
#   emr_bootstrap.sh [VERSION]        (default 3.11)
#
# EMR 7 runs on Amazon Linux 2023, whose default python3 is 3.9; the spark-env configuration of
# car_rental_platform/aws_names.py sets PYSPARK_PYTHON=/usr/bin/python3.11 (dagster-pipes and the
# jobs' contract.py need 3.10+), which AL2023 ships as a package but does not install. boto3 is
# what the jobs' Dagster Pipes message writer uses to put its messages in S3.
#
# Uploaded content-addressed by infra_scripts/upload_code.py (and by the Dagster EMR resource
# before it creates a transient cluster) to s3://BUCKET/scripts/bootstrap/<digest>/.
set -euo pipefail

VERSION="${1:-3.11}"

sudo dnf install -y "python${VERSION}" "python${VERSION}-pip"
sudo "python${VERSION}" -m pip install --quiet boto3
"python${VERSION}" -c "import boto3, sys; print('bootstrap: python', sys.version.split()[0], 'with boto3', boto3.__version__)"
