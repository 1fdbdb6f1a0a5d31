"""EmrSparkRunner against the moto server, with moto's EMR steps driven by the test.

moto accepts steps but never runs them (they stay RUNNING or PENDING), has no CancelSteps, and
reports no FailureDetails. ``ThreadedMotoServer`` runs in this process, so ``FakeEmr`` (in
support.py, the ``fake_emr`` fixture) plays EMR's part inside moto's own models (never in the
runner, which has no test-only code path):

* it wraps ``ElasticMapReduceBackend.describe_step`` so that a step's first DescribeStep finds it
  RUNNING and the second finds what the test scripted: COMPLETED after the "job" reported its
  results, FAILED with FailureDetails and a stderr.gz in the cluster's log URI, still RUNNING
  forever, or still RUNNING while the Dagster run is terminated (``_thread.interrupt_main``
  delivers SIGINT to the run's thread exactly as ``dagster`` run termination does);
* the "job" reports through Pipes the way ``spark_jobs.reporting`` does, by writing the message
  chunk ``1.json`` (opened, materializations, closed) to the S3 location named by the
  ``--dagster-pipes-messages`` argument of the step: the test decodes the step's own arguments;
* it adds the missing CancelSteps action to moto's EMR responses (cancelled steps become
  CANCELLED) and adds ``FailureDetails`` to moto's step status;
* on CancelSteps it also plays the job's side of ``SEND_INTERRUPT``: the job's Pipes context
  closes with ``KeyboardInterrupt``. (Were no "closed" message sent, as when a step is killed
  outright, the runner would behave the same, after Dagster's S3 message reader has waited its
  fixed 10 s for late messages.)

Assets are materialized for real with ``dg.materialize``: about 2 s a run, mostly Dagster's
Pipes reader polling S3 once a second.
"""

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import botocore.session
import dagster as dg
import pytest
from botocore.stub import Stubber
from dagster_aws.emr import EmrClusterState, EmrStepState
from moto.core.exceptions import ServiceException
from moto.emr import models as emr_models

from car_rental_platform.aws_names import ACTIVE_STATES, run_job_flow_request
from car_rental_platform.code_bundle import (
    bootstrap_key,
    bootstrap_keys,
    build_bootstrap,
    build_bundle,
    wheels_uri,
)
from car_rental_platform.resources.aws import (
    EmrBootstrapAction,
    EmrClusterError,
    EmrClusterTemplate,
    EmrSparkRunner,
    EmrStepError,
    EmrTimeoutError,
    S3Lake,
)
from car_rental_platform.resources.aws.emr_clusters import CLUSTER_ENDED_STATES
from car_rental_platform.resources.aws.emr_jobs import (
    DRIVER_LOG_LAUNCHER,
    STEP_DONE,
    STEP_FAILED_STATES,
    EmrJobs,
)
from car_rental_platform.resources.spark import SPARK_JOBS_DIR
from spark_jobs.driver_log import DRIVER_LOG_PARAM, file_appender_config
from tests.aws.support import (
    AwsEnv,
    FakeEmr,
    moto_emr_cluster,
    pipes_message,
    write_pipes_chunk,
)

TERMINATED = ("TERMINATING", "TERMINATED")

# dg.open_pipes_session itself calls a preview API of Dagster's; nothing to act on here.
pytestmark = pytest.mark.filterwarnings("ignore::dagster.PreviewWarning")


@pytest.fixture
def bucket(aws_env: AwsEnv) -> str:
    aws_env.client("s3").create_bucket(Bucket=aws_env.bucket)
    return aws_env.bucket


def _runner(aws_env: AwsEnv, **settings: Any) -> EmrSparkRunner:
    return EmrSparkRunner(
        bucket=aws_env.bucket,
        region_name=aws_env.region,
        endpoint_url=aws_env.endpoint_url,
        poll_interval_seconds=0,
        pipes_poll_interval_seconds=0,
        failure_log_wait_seconds=0,
        **settings,
    )


def _long_running_cluster(aws_env: AwsEnv, name: str = "car-rental-spark") -> str:
    request = run_job_flow_request(name=name, bucket=aws_env.bucket)
    return aws_env.client("emr").run_job_flow(**request)["JobFlowId"]


def _cluster(aws_env: AwsEnv, cluster_id: str) -> dict[str, Any]:
    return aws_env.client("emr").describe_cluster(ClusterId=cluster_id)["Cluster"]


@dg.asset(key=["kpi", "daily_metrics"])
def daily_metrics(
    context: dg.AssetExecutionContext, spark: EmrSparkRunner, lake: S3Lake
) -> Iterator[dg.MaterializeResult]:
    yield from spark.run_job(
        context=context,
        script="kpi_job.py",
        args=[*lake.spark_args(), "--tables", "daily_metrics"],
    )


@dg.asset(key=["kpi", "brand_metrics"], deps=[daily_metrics])
def brand_metrics(
    context: dg.AssetExecutionContext, spark: EmrSparkRunner, lake: S3Lake
) -> Iterator[dg.MaterializeResult]:
    yield from spark.run_job(
        context=context,
        script="kpi_job.py",
        args=[*lake.spark_args(), "--tables", "brand_metrics"],
    )


def _materialize(
    aws_env: AwsEnv, runner: EmrSparkRunner, *assets: dg.AssetsDefinition
) -> dg.ExecuteInProcessResult:
    lake = S3Lake(
        bucket=aws_env.bucket, region_name=aws_env.region, endpoint_url=aws_env.endpoint_url
    )
    return dg.materialize(
        list(assets or [daily_metrics]),
        resources={"spark": runner, "lake": lake},
        raise_on_error=False,
    )


ROWS = {"row_count": {"raw_value": 31, "type": "int"}}


def _failure_message(result: dg.ExecuteInProcessResult) -> str:
    (failure,) = result.get_step_failure_events()
    error = failure.step_failure_data.error
    assert error is not None
    return error.to_string()


def test_existing_cluster_runs_the_job_as_a_spark_submit_step(
    aws_env: AwsEnv, bucket: str, fake_emr: FakeEmr, tmp_path: Path
) -> None:
    cluster_id = _long_running_cluster(aws_env)
    fake_emr.outcomes.append(FakeEmr.succeed(("kpi/daily_metrics", ROWS)))

    result = _materialize(aws_env, _runner(aws_env, cluster_id=cluster_id))

    assert result.success
    (call,) = fake_emr.steps
    digest = build_bundle(tmp_path).digest
    code = f"s3://{bucket}/scripts/{digest}"
    assert call.cluster_id == cluster_id
    folder = call.pipes_messages[DRIVER_LOG_PARAM].removesuffix("/driver.log")
    assert folder.startswith("/tmp/car-rental-driver-")
    assert call.args[: call.args.index("spark-submit")] == [
        "bash",
        "-c",
        DRIVER_LOG_LAUNCHER,
        "car-rental-driver-log",
        f"{folder}/log4j2.properties",
        file_appender_config(f"{folder}/driver.log"),
    ]
    assert call.spark_submit[:-4] == [
        "spark-submit",
        "--deploy-mode",
        "client",
        "--py-files",
        f"{code}/deps.zip",
        f"{code}/kpi_job.py",
        "--lake-root",
        f"s3://{bucket}",
        "--raw-zone",
        "raw",
        "--processed-zone",
        "processed",
        "--kpi-zone",
        "kpi",
        "--tables",
        "daily_metrics",
    ]
    assert call.args[-4::2] == ["--dagster-pipes-context", "--dagster-pipes-messages"]
    assert call.pipes_context["asset_keys"] == ["kpi/daily_metrics"]
    assert call.pipes_context["run_id"] == result.run_id
    assert call.pipes_messages["bucket"] == bucket
    assert call.pipes_messages["region"] == aws_env.region
    assert call.pipes_messages["include_stdio_in_messages"] is True
    assert call.pipes_messages["key_prefix"].startswith(f"dagster_pipes/{result.run_id}/")
    step = aws_env.client("emr").describe_step(ClusterId=cluster_id, StepId=call.step_id)["Step"]
    assert step["Config"]["Jar"] == "command-runner.jar"
    assert step["ActionOnFailure"] == "CONTINUE"

    uploaded = aws_env.client("s3").list_objects_v2(Bucket=bucket, Prefix="scripts/")["Contents"]
    # An existing cluster: no bootstrap script uploaded, only the bundle.
    scripts = sorted(p.name for p in SPARK_JOBS_DIR.glob("*.py") if p.name != "__init__.py")
    assert "kpi_job.py" in scripts
    assert sorted(item["Key"] for item in uploaded) == sorted(
        f"scripts/{digest}/{name}" for name in ["deps.zip", *scripts]
    )

    (materialization,) = result.asset_materializations_for_node("kpi__daily_metrics")
    metadata = materialization.metadata
    assert metadata["row_count"] == dg.IntMetadataValue(31)
    assert metadata["emr_cluster_id"] == dg.TextMetadataValue(cluster_id)
    assert metadata["emr_step_id"] == dg.TextMetadataValue(call.step_id)
    assert metadata["emr_cluster_url"] == dg.MetadataValue.url(
        f"https://us-east-1.console.aws.amazon.com/emr/home?region=us-east-1"
        f"#/clusterDetails/{cluster_id}"
    )
    assert metadata["emr_step_logs_url"] == dg.MetadataValue.url(
        f"https://s3.console.aws.amazon.com/s3/buckets/{bucket}?region=us-east-1"
        f"&prefix=logs/emr/{cluster_id}/steps/{call.step_id}/"
    )
    for moment in ("submitted", "started", "ended"):
        assert isinstance(metadata[f"emr_step_{moment}_at"], dg.TimestampMetadataValue)
    assert metadata["emr_step_seconds"].value >= 0
    assert _cluster(aws_env, cluster_id)["Status"]["State"] not in TERMINATED


def test_step_arguments_meet_emrs_published_constraints(
    aws_env: AwsEnv, bucket: str, fake_emr: FakeEmr
) -> None:
    """Each argument within AWS's model of HadoopJarStepConfig.Args (XmlString: its length and
    characters; newlines are allowed), which botocore does not check before sending."""
    cluster_id = _long_running_cluster(aws_env)
    fake_emr.outcomes.append(FakeEmr.succeed(("kpi/daily_metrics", ROWS)))
    assert _materialize(aws_env, _runner(aws_env, cluster_id=cluster_id)).success

    model = botocore.session.get_session().get_service_model("emr")
    argument = model.shape_for("HadoopJarStepConfig").members["Args"].member
    # The model's pattern is written in UTF-16 (Java): its surrogate-pair range
    # \uD800\uDC00-\uDBFF\uDFFF is the code points U+10000 to U+10FFFF.
    java_pattern = argument.metadata["pattern"]
    surrogates = "\\uD800\\uDC00-\\uDBFF\\uDFFF"
    assert surrogates in java_pattern
    pattern = re.compile(java_pattern.replace(surrogates, "\\U00010000-\\U0010FFFF"))
    (call,) = fake_emr.steps
    assert any("\n" in arg for arg in call.args)  # the log4j2 configuration text
    for arg in call.args:
        assert len(arg) <= argument.metadata["max"], arg[:80]
        assert pattern.fullmatch(arg), arg[:80]


def test_without_the_jvm_log_the_step_is_spark_submit_itself(
    aws_env: AwsEnv, bucket: str, fake_emr: FakeEmr
) -> None:
    cluster_id = _long_running_cluster(aws_env)
    fake_emr.outcomes.append(FakeEmr.succeed(("kpi/daily_metrics", ROWS)))

    runner = _runner(aws_env, cluster_id=cluster_id, stream_driver_jvm_log=False)
    assert _materialize(aws_env, runner).success

    (call,) = fake_emr.steps
    assert call.args[0] == "spark-submit"
    assert DRIVER_LOG_PARAM not in call.pipes_messages


def test_unchanged_code_is_not_uploaded_again(
    aws_env: AwsEnv, bucket: str, fake_emr: FakeEmr, tmp_path: Path
) -> None:
    cluster_id = _long_running_cluster(aws_env)
    runner = _runner(aws_env, cluster_id=cluster_id)
    fake_emr.outcomes.append(FakeEmr.succeed(("kpi/daily_metrics", ROWS)))
    assert _materialize(aws_env, runner).success
    key = f"scripts/{build_bundle(tmp_path).digest}/kpi_job.py"
    aws_env.client("s3").put_object(Bucket=bucket, Key=key, Body=b"# marker")

    fake_emr.outcomes.append(FakeEmr.succeed(("kpi/daily_metrics", ROWS)))
    assert _materialize(aws_env, runner).success

    body = aws_env.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    assert body == b"# marker"


def test_cluster_found_by_name_among_active_clusters(
    aws_env: AwsEnv, bucket: str, fake_emr: FakeEmr
) -> None:
    old = _long_running_cluster(aws_env, "analytics")
    aws_env.client("emr").terminate_job_flows(JobFlowIds=[old])
    active = _long_running_cluster(aws_env, "analytics")
    _long_running_cluster(aws_env, "other")
    fake_emr.outcomes.append(FakeEmr.succeed(("kpi/daily_metrics", ROWS)))

    assert _materialize(aws_env, _runner(aws_env, cluster_name="analytics")).success
    assert [call.cluster_id for call in fake_emr.steps] == [active]


def test_unknown_or_terminated_clusters_fail_clearly(aws_env: AwsEnv, bucket: str) -> None:
    jobs = _runner(aws_env, cluster_name="nope").get_client()
    with pytest.raises(EmrClusterError, match="no active EMR cluster named 'nope'"):
        jobs.clusters.find_cluster(name="nope", log=dg.get_dagster_logger())
    cluster_id = _long_running_cluster(aws_env)
    aws_env.client("emr").terminate_job_flows(JobFlowIds=[cluster_id])
    with pytest.raises(EmrClusterError, match=f"EMR cluster {cluster_id} is TERMINATED"):
        jobs.clusters.check_active(cluster_id=cluster_id)


def test_transient_cluster_from_the_template_serves_the_run_then_ends(
    aws_env: AwsEnv, bucket: str, fake_emr: FakeEmr
) -> None:
    template = EmrClusterTemplate(
        core_market="SPOT",
        spot_bid_price="0.12",
        core_instance_count=3,
        step_concurrency=4,
        bootstrap_actions=[
            EmrBootstrapAction(name="python", path=f"s3://{bucket}/bootstrap/py.sh", args=["3.11"])
        ],
    )
    fake_emr.outcomes += [
        FakeEmr.succeed(("kpi/daily_metrics", ROWS)),
        FakeEmr.succeed(("kpi/brand_metrics", ROWS)),
    ]

    result = _materialize(
        aws_env, _runner(aws_env, cluster_template=template), daily_metrics, brand_metrics
    )

    assert result.success
    assert len({call.cluster_id for call in fake_emr.steps}) == 1
    cluster_id = fake_emr.steps[0].cluster_id
    cluster = _cluster(aws_env, cluster_id)
    assert cluster["Name"] == f"car-rental-transient-{result.run_id[:8]}"
    assert cluster["Status"]["State"] in TERMINATED
    assert cluster["ReleaseLabel"] == "emr-7.5.0"
    assert cluster["LogUri"] == f"s3://{bucket}/logs/emr/"
    assert cluster["StepConcurrencyLevel"] == 4
    assert cluster["ServiceRole"] == "car-rental-emr-service-role"
    assert cluster["Ec2InstanceAttributes"]["IamInstanceProfile"] == "car-rental-emr-ec2-role"
    assert [app["Name"] for app in cluster["Applications"]] == ["Spark"]
    assert {"Key": "dagster-run-id", "Value": result.run_id} in cluster["Tags"]
    assert {"Key": "project", "Value": "car-rental"} in cluster["Tags"]
    # The idle timeout is set on the launched, tagged cluster (see set_idle_timeout).
    assert moto_emr_cluster(cluster_id).auto_termination_policy == {"IdleTimeout": 1800}
    emr = aws_env.client("emr")
    listed = emr.list_instance_groups(ClusterId=cluster_id)["InstanceGroups"]
    groups = {group["InstanceGroupType"]: group for group in listed}
    assert groups["CORE"]["Market"] == "SPOT"
    assert groups["CORE"]["BidPrice"] == "0.12"
    assert groups["CORE"]["RequestedInstanceCount"] == 3
    assert groups["MASTER"]["Market"] == "ON_DEMAND"
    actions = emr.list_bootstrap_actions(ClusterId=cluster_id)["BootstrapActions"]
    python_script = bootstrap_key()
    assert [(a["Name"], a["ScriptPath"], a["Args"]) for a in actions] == [
        (
            "install-python3.11",
            f"s3://{bucket}/{python_script}",
            ["3.11", wheels_uri(bucket), aws_env.region],
        ),
        ("python", f"s3://{bucket}/bootstrap/py.sh", ["3.11"]),
    ]
    script = aws_env.client("s3").get_object(Bucket=bucket, Key=python_script)["Body"].read()
    assert b"dnf install -y" in script
    uploaded = aws_env.client("s3").list_objects_v2(Bucket=bucket, Prefix="scripts/bootstrap/")
    keys = bootstrap_keys(build_bootstrap()).values()
    assert sorted(item["Key"] for item in uploaded["Contents"]) == sorted(keys), "and its wheels"


class AccessDenied(ServiceException):
    code = "AccessDeniedException"


@pytest.mark.filterwarnings("ignore:Exception\\(AccessDenied\\):UserWarning")
def test_a_cluster_that_cannot_get_its_idle_timeout_is_terminated(
    aws_env: AwsEnv, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The launch request carries no auto-termination policy (IAM could not scope it there);
    the policy follows at once, and a cluster refused it is not left running without it."""
    jobs = _runner(aws_env, cluster_template=EmrClusterTemplate(python_bootstrap=False))
    clusters = jobs.get_client().clusters
    assert "AutoTerminationPolicy" not in clusters.transient_cluster_request(run_id="0123456789")

    def refused(response: Any) -> Any:
        raise AccessDenied("not authorized to perform: elasticmapreduce:PutAutoTerminationPolicy")

    monkeypatch.setattr(
        "moto.emr.responses.ElasticMapReduceResponse.put_auto_termination_policy", refused
    )
    with pytest.raises(EmrClusterError, match="30-minute idle auto-termination policy") as raised:
        clusters.create_transient_cluster(run_id="0123456789", log=dg.get_dagster_logger())

    assert "PutAutoTerminationPolicy" in str(raised.value)
    cluster_id = raised.value.metadata["emr_cluster_id"].value
    assert _cluster(aws_env, cluster_id)["Status"]["State"] in TERMINATED

    without = _runner(aws_env, cluster_template=EmrClusterTemplate(idle_timeout_minutes=0))
    cluster_id = without.get_client().clusters.create_transient_cluster(
        run_id="0123456789", log=dg.get_dagster_logger()
    )
    assert _cluster(aws_env, cluster_id)["Status"]["State"] not in TERMINATED, "none asked for"


def test_transient_cluster_without_the_python_bootstrap(aws_env: AwsEnv, bucket: str) -> None:
    """An image that has the interpreter, or EMR's own Python: no action, nothing uploaded."""
    for template in (
        EmrClusterTemplate(python_bootstrap=False),
        EmrClusterTemplate(pyspark_python=None),
    ):
        jobs = _runner(aws_env, cluster_template=template).get_client()
        cluster_id = jobs.clusters.create_transient_cluster(
            run_id="0123456789", log=dg.get_dagster_logger()
        )

        actions = aws_env.client("emr").list_bootstrap_actions(ClusterId=cluster_id)
        assert actions["BootstrapActions"] == []
    assert "Contents" not in aws_env.client("s3").list_objects_v2(Bucket=bucket)


def test_steps_report_instance_hours_and_cost_and_the_cluster_logs_its_total(
    aws_env: AwsEnv, bucket: str, fake_emr: FakeEmr, capfd: pytest.CaptureFixture[str]
) -> None:
    """The template's three m5.xlarge at 0.25 USD an hour, up for two hours, the step 30 min.

    moto reports NormalizedInstanceHours (0) but no clock passes: the test sets the hours and
    the timeline EMR would report.
    """

    def outcome(cluster: Any, step: Any, call: Any) -> None:
        now = emr_models.utcnow()
        cluster.ready_datetime = now - timedelta(hours=2)
        cluster.normalized_instance_hours = 48
        step.start_date_time = now - timedelta(minutes=30)
        FakeEmr.succeed(("kpi/daily_metrics", ROWS))(cluster, step, call)
        step.end_date_time = now

    fake_emr.outcomes.append(outcome)

    result = _materialize(aws_env, _runner(aws_env, instance_prices_usd="m5.xlarge=0.25"))

    assert result.success
    (materialization,) = result.asset_materializations_for_node("kpi__daily_metrics")
    metadata = {key: value.value for key, value in materialization.metadata.items()}
    assert metadata["emr_cluster_normalized_instance_hours"] == 48
    assert metadata["emr_cluster_estimated_cost_usd"] == pytest.approx(1.50, abs=0.01)
    assert metadata["emr_step_estimated_cost_usd"] == pytest.approx(0.375, abs=0.001)
    (call,) = fake_emr.steps
    assert (
        f"transient EMR cluster {call.cluster_id} used 48 normalized instance hours over 2.0"
        in capfd.readouterr().err
    )


def test_without_a_price_for_every_instance_type_there_is_no_estimate(
    aws_env: AwsEnv, bucket: str
) -> None:
    cluster_id = _long_running_cluster(aws_env)
    jobs = _runner(aws_env, cluster_id=cluster_id, instance_prices_usd="r5.xlarge=0.3").get_client()

    cost = jobs.clusters.cluster_cost(cluster_id=cluster_id)

    assert (cost.normalized_instance_hours, cost.usd_per_hour, cost.estimated_usd) == (
        0,
        None,
        None,
    )


@pytest.mark.parametrize("prices", ["m5.xlarge", "m5.xlarge=cheap", "=0.2", "m5.xlarge=-1"])
def test_a_malformed_price_list_fails_before_any_step(aws_env: AwsEnv, prices: str) -> None:
    with pytest.raises(ValueError, match="is not TYPE=USD_PER_HOUR"):
        _runner(aws_env, cluster_id="j-1", instance_prices_usd=prices).get_client()


def test_the_drivers_output_reaches_the_run_while_the_step_runs(
    aws_env: AwsEnv, bucket: str, fake_emr: FakeEmr, capfd: pytest.CaptureFixture[str]
) -> None:
    """The job's Pipes writer sends its stdio as log_external_stream messages (see
    test_reporting_s3.py); Dagster writes them to the run's stderr/stdout, i.e. its compute logs."""

    def outcome(cluster: Any, step: Any, call: Any) -> None:
        stream = {"stream": "stderr", "text": "WARN TaskSetManager: lost task 0.0\n", "extras": {}}
        report = {"asset_key": "kpi/daily_metrics", "metadata": ROWS, "data_version": None}
        write_pipes_chunk(
            call,
            pipes_message("log_external_stream", stream),
            pipes_message("report_asset_materialization", report),
            pipes_message("closed", {}),
        )
        step.state = "COMPLETED"
        step.end_date_time = step.start_date_time

    fake_emr.outcomes.append(outcome)

    assert _materialize(aws_env, _runner(aws_env)).success

    assert "WARN TaskSetManager: lost task 0.0" in capfd.readouterr().err


def test_failed_step_raises_with_reason_and_stderr_tail_and_ends_the_cluster(
    aws_env: AwsEnv, bucket: str, fake_emr: FakeEmr
) -> None:
    stderr = "\n".join(f"line {n}" for n in range(100)) + "\nAnalysisException: no rentals"
    fake_emr.outcomes.append(FakeEmr.fail("Path does not exist: processed/rentals", stderr))

    result = _materialize(aws_env, _runner(aws_env, stderr_tail_lines=3))

    assert not result.success
    message = _failure_message(result)
    (call,) = fake_emr.steps
    assert f"EMR step {call.step_id} (kpi_job.py" in message
    assert f"on cluster {call.cluster_id} ended FAILED after" in message
    assert "Reason: Path does not exist: processed/rentals" in message
    stderr_uri = f"s3://{bucket}/logs/emr/{call.cluster_id}/steps/{call.step_id}/stderr.gz"
    assert f"Last lines of {stderr_uri}:\nline 98\nline 99\nAnalysisException: no rentals" in (
        message
    )
    assert "\nline 97\n" not in message
    assert _cluster(aws_env, call.cluster_id)["Status"]["State"] in TERMINATED


def test_terminated_run_cancels_its_step_and_ends_the_transient_cluster(
    aws_env: AwsEnv, bucket: str, fake_emr: FakeEmr
) -> None:
    fake_emr.outcomes.append(FakeEmr.terminate_dagster_run())

    result = _materialize(aws_env, _runner(aws_env))

    assert not result.success
    (call,) = fake_emr.steps
    assert fake_emr.cancelled == [call.step_id]
    emr = aws_env.client("emr")
    step = emr.describe_step(ClusterId=call.cluster_id, StepId=call.step_id)["Step"]
    assert step["Status"]["State"] == "CANCELLED"
    assert _cluster(aws_env, call.cluster_id)["Status"]["State"] in TERMINATED


def test_existing_cluster_survives_a_terminated_run(
    aws_env: AwsEnv, bucket: str, fake_emr: FakeEmr
) -> None:
    cluster_id = _long_running_cluster(aws_env)
    fake_emr.outcomes.append(FakeEmr.terminate_dagster_run())

    assert not _materialize(aws_env, _runner(aws_env, cluster_id=cluster_id)).success

    assert fake_emr.cancelled == [fake_emr.steps[0].step_id]
    assert _cluster(aws_env, cluster_id)["Status"]["State"] not in TERMINATED


def test_step_wait_times_out_with_the_waited_time(
    aws_env: AwsEnv, bucket: str, fake_emr: FakeEmr
) -> None:
    cluster_id = _long_running_cluster(aws_env)
    jobs = _runner(aws_env, cluster_id=cluster_id, step_timeout_seconds=1).get_client()
    step_id = jobs.submit_step(cluster_id=cluster_id, name="kpi_job.py", args=["spark-submit"])
    fake_emr.outcomes.append(FakeEmr.hang())

    with pytest.raises(EmrTimeoutError) as raised:
        jobs.wait_for_step(cluster_id=cluster_id, step_id=step_id, log=dg.get_dagster_logger())

    message = str(raised.value)
    assert f"EMR step {step_id} (kpi_job.py) on cluster {cluster_id} still RUNNING after" in message
    assert "s (timeout 1s)" in message
    assert raised.value.metadata["waited_seconds"].value >= 1


def test_cluster_terminated_with_errors_fails_the_step_with_its_reason(
    aws_env: AwsEnv, bucket: str, fake_emr: FakeEmr
) -> None:
    cluster_id = _long_running_cluster(aws_env)
    jobs = _runner(aws_env, cluster_id=cluster_id).get_client()
    step_id = jobs.submit_step(cluster_id=cluster_id, name="kpi_job.py", args=["spark-submit"])
    fake_emr.outcomes.append(FakeEmr.cluster_dies("The master node was terminated by user."))

    with pytest.raises(EmrStepError) as raised:
        jobs.wait_for_step(cluster_id=cluster_id, step_id=step_id, log=dg.get_dagster_logger())

    message = str(raised.value)
    assert f"EMR step {step_id} (kpi_job.py) on cluster {cluster_id} ended PENDING" in message
    assert "cluster TERMINATED_WITH_ERRORS: The master node was terminated by user." in message
    assert "(stderr not in S3 after waiting 0s)" in message


def test_a_cluster_that_fails_to_start_fails_the_step_with_the_clusters_reason(
    aws_env: AwsEnv, bucket: str
) -> None:
    """EMR cancels the steps of a cluster that never started; only the cluster says why.

    No step is played here: moto's cluster is put in the state EMR leaves it in (moto reports a
    StateChangeReason's Message, not its Code: the next test covers the Code).
    """
    cluster_id = _long_running_cluster(aws_env)
    jobs = _runner(aws_env, cluster_id=cluster_id).get_client()
    step_id = jobs.submit_step(cluster_id=cluster_id, name="kpi_job.py", args=["spark-submit"])
    cluster = moto_emr_cluster(cluster_id, aws_env.region)
    cluster.state = "TERMINATED_WITH_ERRORS"
    cluster.last_state_change_reason = "Master instance failed: bootstrap action 1 returned 1"
    for step in cluster.steps:
        step.state = "CANCELLED"

    with pytest.raises(EmrStepError) as raised:
        jobs.wait_for_step(cluster_id=cluster_id, step_id=step_id, log=dg.get_dagster_logger())

    message = str(raised.value)
    assert f"EMR step {step_id} (kpi_job.py) on cluster {cluster_id} ended CANCELLED" in message
    assert (
        "cluster TERMINATED_WITH_ERRORS: Master instance failed: bootstrap action 1 returned 1"
        in message
    )
    assert "no reason given" not in message
    assert "(the step never started: it has no logs)" in message
    assert raised.value.metadata["cluster_state_change_reason"].value == (
        "Master instance failed: bootstrap action 1 returned 1"
    )


def test_the_clusters_reason_code_and_message_are_both_quoted(aws_env: AwsEnv) -> None:
    """What real EMR answers for a cluster it could not start (botocore's Stubber plays EMR)."""
    runner = _runner(aws_env, cluster_id="j-1")
    emr = botocore.session.get_session().create_client("emr", region_name=aws_env.region)
    jobs = EmrJobs(runner, emr=emr, s3=aws_env.client("s3"))
    when = datetime(2026, 1, 1, tzinfo=UTC)
    with Stubber(emr) as stub:
        stub.add_response(
            "describe_step",
            {
                "Step": {
                    "Id": "s-1",
                    "Name": "kpi_job.py",
                    "Status": {"State": "CANCELLED", "Timeline": {"CreationDateTime": when}},
                }
            },
        )
        stub.add_response(
            "describe_cluster",
            {
                "Cluster": {
                    "Id": "j-1",
                    "Name": "car-rental-transient-1",
                    "Status": {
                        "State": "TERMINATED_WITH_ERRORS",
                        "StateChangeReason": {
                            "Code": "VALIDATION_ERROR",
                            "Message": "Invalid InstanceProfile: car-rental-emr-ec2-profile.",
                        },
                    },
                }
            },
        )
        with pytest.raises(EmrStepError) as raised:
            jobs.wait_for_step(cluster_id="j-1", step_id="s-1", log=dg.get_dagster_logger())

    message = str(raised.value)
    assert "EMR step s-1 (kpi_job.py) on cluster j-1 ended CANCELLED after" in message
    assert (
        "s. cluster TERMINATED_WITH_ERRORS: VALIDATION_ERROR: "
        "Invalid InstanceProfile: car-rental-emr-ec2-profile." in message
    )


class Throttled(ServiceException):
    code = "ThrottlingException"


@pytest.mark.filterwarnings("ignore:Exception\\(Throttled\\):UserWarning")
def test_throttling_is_retried(
    aws_env: AwsEnv, bucket: str, fake_emr: FakeEmr, monkeypatch: pytest.MonkeyPatch
) -> None:
    """moto never throttles: DescribeStep is made to answer ThrottlingException once."""
    cluster_id = _long_running_cluster(aws_env)
    jobs = _runner(aws_env, cluster_id=cluster_id).get_client()
    step_id = jobs.submit_step(cluster_id=cluster_id, name="kpi_job.py", args=["spark-submit"])
    fake_emr.outcomes.append(FakeEmr.complete())
    describe_step = emr_models.ElasticMapReduceBackend.describe_step
    calls: list[str] = []

    def throttled(backend: Any, cluster: str, step: str) -> Any:
        calls.append(step)
        if len(calls) == 1:
            raise Throttled("Rate exceeded")
        return describe_step(backend, cluster, step)

    monkeypatch.setattr(emr_models.ElasticMapReduceBackend, "describe_step", throttled)

    run = jobs.wait_for_step(cluster_id=cluster_id, step_id=step_id, log=dg.get_dagster_logger())

    assert run.state == "COMPLETED"
    assert len(calls) >= 3


def test_cluster_and_step_states_are_dagster_aws_enums() -> None:
    """The shared ListClusters filter (aws_names, no Dagster import for the set-up scripts) and
    the runner's ended states together are every EmrClusterState, without overlap."""
    every_state = {state.value for state in EmrClusterState}
    assert {"TERMINATING", "TERMINATED", "TERMINATED_WITH_ERRORS"} == CLUSTER_ENDED_STATES
    assert set(ACTIVE_STATES) | CLUSTER_ENDED_STATES == every_state
    assert not set(ACTIVE_STATES) & CLUSTER_ENDED_STATES
    assert EmrStepState.Completed.value == STEP_DONE
    assert {"FAILED", "CANCELLED", "INTERRUPTED"} == STEP_FAILED_STATES
