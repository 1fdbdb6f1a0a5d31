"""Idempotent boto3 set-up of the AWS deployment: bucket, IAM, Glue/Athena, EMR, code upload.

Each module runs as ``python -m infra_scripts.<name> --help``; ``setup_all`` runs them in order.
Every run prints one line per resource (``create``, ``update``, ``ok (unchanged)``, or under
``--dry-run`` ``would create`` ...) and a second run changes nothing.
"""
