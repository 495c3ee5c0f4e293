"""deploy/helm/values.yaml: rendered as Dagster's Helm chart does, then checked with dagster-k8s and Dagster's
own config schemas, and against the repository's dagster.yaml.

No Helm here: `chart_instance()` reproduces the parts of the chart's `configmap-instance.yaml` templates
(chart 1.13.27: `_run-launcher.tpl`, `_run-coordinator.tpl`, `_concurrency.tpl`, run monitoring and retries)
that these values reach, including the chart's refusal of run limits set twice.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from unittest import mock

import dagster as dg
import pytest
import yaml

from pdfgen_pipeline_tests.deploy.common import DAGSTER_YAML, HELM_VALUES, REPO, load_yaml, resources_env_vars

RELEASE_NAMESPACE = "pdfgen"
FULLNAME = "pdfgen-dagster"  # `helm upgrade --install pdfgen dagster/dagster`
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
#: Measured on a 312-page book: peak RSS ~260 MB per layout process, ~600 MB for a whole render.
RENDER_PEAK_BYTES = 600 * 10**6
#: Dagster's run worker process beside the render (imports Dagster and the definitions).
RUN_WORKER_BYTES = 200 * 10**6

_QUANTITY = {"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30,
             "Ti": 2**40}


def quantity(value: str | int | float) -> float:
    """A Kubernetes resource quantity ("2", "250m", "1536Mi", "2Gi") as a number."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([A-Za-z]*)", str(value))
    assert m and m.group(2) in _QUANTITY, f"not a Kubernetes quantity: {value!r}"
    return float(m.group(1)) * _QUANTITY[m.group(2)]


@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    return load_yaml(HELM_VALUES)


def launcher_values(values: Mapping[str, Any]) -> Mapping[str, Any]:
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    return values["runLauncher"]["config"]["k8sRunLauncher"]


def deployment(values: Mapping[str, Any]) -> Mapping[str, Any]:
    (dep,) = values["dagster-user-deployments"]["deployments"]
    return dep


#: Keys of the chart's values schema (helm/dagster/schema in dagster-io/dagster, 1.13 line) for the parts these
#: values use; None: free-form (Kubernetes objects, maps). A key outside these is a typo Helm would reject or,
#: worse, silently ignore. Extend from the chart's schema when using a new key.
_TAG_LIMIT = [{"key": None, "value": {"applyLimitPerUniqueValue": None}, "limit": None}]
_RESOURCES = {"requests": None, "limits": None}
CHART_KEYS: dict[str, Any] = {
    "global": {"postgresqlSecretName": None, "dagsterHome": None, "serviceAccountName": None,
               "celeryConfigSecretName": None},
    "generatePostgresqlPasswordSecret": None,
    "postgresql": {"image": None, "enabled": None, "postgresqlHost": None, "postgresqlUsername": None,
                   "postgresqlPassword": None, "postgresqlDatabase": None, "postgresqlParams": None,
                   "postgresqlScheme": None, "service": {"port": None}},
    "dagster-user-deployments": {
        "enabled": None, "enableSubchart": None,
        "deployments": [{
            "name": None, "image": {"repository": None, "tag": None, "pullPolicy": None},
            "dagsterApiGrpcArgs": None, "codeServerArgs": None, "includeConfigInLaunchedRuns": {"enabled": None},
            "deploymentNamespace": None, "port": None, "replicaCount": None, "env": None, "envConfigMaps": None,
            "envSecrets": [{"name": None}], "annotations": None, "nodeSelector": None, "affinity": None,
            "tolerations": None, "podSecurityContext": None, "securityContext": None, "resources": _RESOURCES,
            "livenessProbe": None, "readinessProbe": None, "startupProbe": None, "labels": None}]},
    "runLauncher": {"type": None, "config": {"k8sRunLauncher": {
        "image": None, "imagePullPolicy": None, "jobNamespace": None, "loadInclusterConfig": None,
        "kubeconfigFile": None, "envConfigMaps": [{"name": None}], "envSecrets": [{"name": None}],
        "envVars": None, "volumeMounts": None, "volumes": None, "labels": None, "failPodOnRunFailure": None,
        "resources": _RESOURCES, "schedulerName": None, "securityContext": None,
        "runK8sConfig": {"containerConfig": None, "podSpecConfig": None, "podTemplateSpecMetadata": None,
                         "jobSpecConfig": None, "jobMetadata": None}}}},
    "concurrency": {"enabled": None,
                    "pools": {"defaultLimit": None, "granularity": None, "opGranularityRunBuffer": None},
                    "runs": {"maxConcurrentRuns": None, "tagConcurrencyLimits": _TAG_LIMIT}},
    "dagsterDaemon": {
        "runCoordinator": {"enabled": None, "type": None, "config": {"queuedRunCoordinator": {
            "maxConcurrentRuns": None, "tagConcurrencyLimits": _TAG_LIMIT, "dequeueIntervalSeconds": None,
            "dequeueNumWorkers": None, "dequeueUseThreads": None, "blockOpConcurrencyLimitedRuns": None}}},
        "runMonitoring": {"enabled": None, "startTimeoutSeconds": None, "cancelTimeoutSeconds": None,
                          "maxResumeRunAttempts": None, "pollIntervalSeconds": None,
                          "freeSlotsAfterRunEndSeconds": None},
        "runRetries": {"enabled": None, "maxRetries": None, "retryOnAssetOrOpFailure": None},
        "resources": _RESOURCES},
    "telemetry": {"enabled": None},
}
PULL_POLICIES = {"Always", "IfNotPresent", "Never"}


def unknown_keys(node: Any, spec: Any, path: str = "") -> list[str]:
    """Paths of `node` (parsed values) that `spec` (CHART_KEYS) does not know."""
    if spec is None:
        return []
    if isinstance(spec, list):
        return [p for i, item in enumerate(node or []) for p in unknown_keys(item, spec[0], f"{path}[{i}]")]
    if not isinstance(node, Mapping):
        return [f"{path}: expected a mapping"]
    return [p for key, value in node.items()
            for p in ([f"{path}.{key}".lstrip(".")] if key not in spec else
                      unknown_keys(value, spec[key], f"{path}.{key}"))]


def test_values_use_only_keys_of_the_chart_schema(values):
    assert unknown_keys(values, CHART_KEYS) == []
    assert launcher_values(values)["imagePullPolicy"] in PULL_POLICIES
    assert deployment(values)["image"]["pullPolicy"] in PULL_POLICIES


def test_key_check_catches_a_typo(values):
    broken = yaml.safe_load(yaml.safe_dump(values))
    broken["runLauncher"]["config"]["k8sRunLauncher"]["failPodOnRunFailures"] = True
    broken["dagsterDaemon"]["runMonitoring"]["startTimeoutSecond"] = 1
    assert set(unknown_keys(broken, CHART_KEYS)) == {"runLauncher.config.k8sRunLauncher.failPodOnRunFailures",
                                                     "dagsterDaemon.runMonitoring.startTimeoutSecond"}


# ----------------------------------------------------------------------------- the chart, reproduced

def chart_run_launcher(values: Mapping[str, Any]) -> dict[str, Any]:
    """`run_launcher.config` as the chart's `dagsterYaml.runLauncher.k8s` template writes it."""
    k = launcher_values(values)
    glob = values.get("global", {})
    cfg: dict[str, Any] = {
        "load_incluster_config": k["loadInclusterConfig"],
        "job_namespace": k.get("jobNamespace") or RELEASE_NAMESPACE,
        "image_pull_policy": k["imagePullPolicy"],
        "service_account_name": glob.get("serviceAccountName") or FULLNAME,
        "dagster_home": glob.get("dagsterHome", "/opt/dagster/dagster_home"),
        "instance_config_map": f"{FULLNAME}-instance",
        "postgres_password_secret": glob.get("postgresqlSecretName") or f"{FULLNAME}-postgresql-secret",
    }
    if k.get("kubeconfigFile"):
        cfg["kubeconfig_file"] = k["kubeconfigFile"]
    if values.get("imagePullSecrets"):
        cfg["image_pull_secrets"] = values["imagePullSecrets"]
    if "image" in k:
        cfg["job_image"] = f"{k['image']['repository']}:{k['image']['tag']}"
    if k.get("envConfigMaps"):
        cfg["env_config_maps"] = [m["name"] for m in k["envConfigMaps"] if "name" in m]
    if k.get("envSecrets"):
        cfg["env_secrets"] = [s["name"] for s in k["envSecrets"] if "name" in s]
    for chart_key, key in (("envVars", "env_vars"), ("volumeMounts", "volume_mounts"), ("volumes", "volumes"),
                           ("labels", "labels"), ("resources", "resources"), ("schedulerName", "scheduler_name"),
                           ("securityContext", "security_context")):
        if k.get(chart_key):
            cfg[key] = k[chart_key]
    if k.get("failPodOnRunFailure"):
        cfg["fail_pod_on_run_failure"] = True
    if k.get("runK8sConfig"):
        names = {"containerConfig": "container_config", "podSpecConfig": "pod_spec_config",
                 "podTemplateSpecMetadata": "pod_template_spec_metadata", "jobSpecConfig": "job_spec_config",
                 "jobMetadata": "job_metadata"}
        cfg["run_k8s_config"] = {names[n]: v for n, v in k["runK8sConfig"].items() if v}
    return cfg


def chart_instance(values: Mapping[str, Any]) -> dict[str, Any]:
    """The instance settings the chart renders from these values (storage left out)."""
    daemon = values["dagsterDaemon"]
    conc = values.get("concurrency", {})
    qrc = daemon["runCoordinator"]["config"]["queuedRunCoordinator"]
    runs, pools = conc.get("runs", {}), conc.get("pools", {})
    if conc.get("enabled") and daemon["runCoordinator"]["enabled"]:  # _concurrency.tpl's `fail`s
        assert runs.get("maxConcurrentRuns") is None or qrc.get("maxConcurrentRuns") is None, \
            "chart fails: maxConcurrentRuns set in concurrency.runs and in queuedRunCoordinator"
        assert not (runs.get("tagConcurrencyLimits") and qrc.get("tagConcurrencyLimits")), \
            "chart fails: tagConcurrencyLimits set in concurrency.runs and in queuedRunCoordinator"
    instance: dict[str, Any] = {
        "run_launcher": {"module": "dagster_k8s", "class": "K8sRunLauncher", "config": chart_run_launcher(values)},
        "telemetry": {"enabled": values.get("telemetry", {}).get("enabled", True)},
    }
    if daemon["runCoordinator"]["enabled"]:
        assert daemon["runCoordinator"]["type"] == "QueuedRunCoordinator"
        config: dict[str, Any] = {}
        if qrc.get("maxConcurrentRuns") is not None:
            config["max_concurrent_runs"] = qrc["maxConcurrentRuns"]
        elif not conc.get("enabled"):
            config["max_concurrent_runs"] = -1
        if qrc.get("tagConcurrencyLimits"):
            config["tag_concurrency_limits"] = qrc["tagConcurrencyLimits"]
        instance["run_coordinator"] = {"module": "dagster.core.run_coordinator", "class": "QueuedRunCoordinator",
                                       **({"config": config} if config else {})}
    if conc.get("enabled"):
        rendered: dict[str, Any] = {}
        pool_keys = {"defaultLimit": "default_limit", "granularity": "granularity",
                     "opGranularityRunBuffer": "op_granularity_run_buffer"}
        if any(pools.get(k) is not None for k in pool_keys):
            rendered["pools"] = {v: pools[k] for k, v in pool_keys.items() if pools.get(k) is not None}
        if runs.get("maxConcurrentRuns") is not None or runs.get("tagConcurrencyLimits"):
            rendered["runs"] = {}
            if runs.get("maxConcurrentRuns") is not None:
                rendered["runs"]["max_concurrent_runs"] = runs["maxConcurrentRuns"]
            if runs.get("tagConcurrencyLimits"):
                rendered["runs"]["tag_concurrency_limits"] = [
                    {"key": t["key"], **({"value": t["value"]} if t.get("value") else {}), "limit": t["limit"]}
                    for t in runs["tagConcurrencyLimits"]]
        instance["concurrency"] = rendered
    mon = daemon.get("runMonitoring", {})
    if mon.get("enabled"):
        instance["run_monitoring"] = {
            "enabled": True,
            "start_timeout_seconds": mon["startTimeoutSeconds"],
            **({"cancel_timeout_seconds": mon["cancelTimeoutSeconds"]}
               if mon.get("cancelTimeoutSeconds") is not None else {}),
            **({"max_resume_run_attempts": mon["maxResumeRunAttempts"]}
               if mon.get("maxResumeRunAttempts") is not None else {}),
            "poll_interval_seconds": mon["pollIntervalSeconds"],
            "free_slots_after_run_end_seconds": mon["freeSlotsAfterRunEndSeconds"],
        }
    retries = daemon.get("runRetries", {})
    if retries.get("enabled"):
        instance["run_retries"] = {"enabled": True,
                                   **({"max_retries": retries["maxRetries"]} if retries.get("maxRetries") else {}),
                                   **({"retry_on_asset_or_op_failure": retries["retryOnAssetOrOpFailure"]}
                                      if "retryOnAssetOrOpFailure" in retries else {})}
    return instance


def instance_config(settings: Mapping[str, Any], directory: Path) -> Mapping[str, Any]:
    """Settings validated by Dagster's own instance loader (schema and cross-field checks), with defaults."""
    from dagster._core.instance.config import dagster_instance_config

    (directory / "dagster.yaml").write_text(yaml.safe_dump(dict(settings)), encoding="utf-8")
    return dagster_instance_config(str(directory))[0]


# ----------------------------------------------------------------------------- run launcher and run pods

def processed_launcher_config(values: Mapping[str, Any]) -> dict[str, Any]:
    from dagster import Shape
    from dagster._config import process_config
    from dagster_k8s import K8sRunLauncher

    result = process_config(Shape(K8sRunLauncher.config_type()), chart_run_launcher(values))
    assert result.success, "\n".join(e.message for e in result.errors)
    return result.value


def test_run_launcher_config_passes_dagster_k8s_schema(values):
    config = processed_launcher_config(values)
    assert config["resources"] == launcher_values(values)["resources"]


def run_pod(values: Mapping[str, Any]):
    """The Kubernetes Job dagster-k8s builds for a run of publish_ouvrage, with these values."""
    import dagster_k8s.launcher
    from dagster._core.storage.dagster_run import DagsterRun
    from dagster_k8s import K8sRunLauncher
    from dagster_k8s.job import construct_dagster_k8s_job

    with mock.patch.object(dagster_k8s.launcher, "load_kubernetes_config"):  # no cluster here
        launcher = K8sRunLauncher.from_config_value(None, processed_launcher_config(values))
    run = DagsterRun(job_name="publish_ouvrage", run_id="0123abcd", tags={"dagster/partition": "c99"})
    context = launcher.get_container_context_for_run(run)
    image = deployment(values)["image"]
    job_config = context.get_k8s_job_config(job_image=f"{image['repository']}:{image['tag']}", run_launcher=launcher)
    return construct_dagster_k8s_job(job_config=job_config, args=["dagster", "api", "execute_run", "{}"],
                                     job_name="dagster-run-0123abcd", pod_name="dagster-run-0123abcd",
                                     component="run_worker", user_defined_k8s_config=context.run_k8s_config,
                                     labels={}, env_vars=[])


def env_var_pairs(entries: list[str]) -> dict[str, str]:
    return dict(e.split("=", 1) for e in entries if "=" in e)


def test_run_pod_has_the_resources_variables_and_secrets(values):
    job = run_pod(values)
    container = job.spec.template.spec.containers[0]
    launcher = launcher_values(values)
    assert container.image == "{repository}:{tag}".format(**deployment(values)["image"])
    assert container.resources.requests == launcher["resources"]["requests"]
    assert container.resources.limits == launcher["resources"]["limits"]
    env = {e.name: e for e in container.env}
    # pipeline settings: every store URL resources.py reads, and the render's process count
    urls = {n for n in resources_env_vars() if n.startswith("PDFGEN_")}
    assert urls <= set(env), sorted(urls - set(env))
    assert env["PDFGEN_RENDER_WORKERS"].value == "2"
    # S3 credentials and endpoint from the secret; the Postgres password from the existing secret
    assert [s.secret_ref.name for s in container.env_from if s.secret_ref] == ["pdfgen-s3"]
    pg = env["DAGSTER_PG_PASSWORD"].value_from.secret_key_ref
    assert (pg.name, pg.key) == (values["global"]["postgresqlSecretName"], "postgresql-password")
    assert values["generatePostgresqlPasswordSecret"] is False
    assert container.security_context.run_as_non_root is True


def test_run_pod_size_fits_a_render(values):
    resources = launcher_values(values)["resources"]
    requests, limits = resources["requests"], resources["limits"]
    for key in ("cpu", "memory"):
        assert quantity(requests[key]) <= quantity(limits[key]), key
    workers = int(env_var_pairs(launcher_values(values)["envVars"])["PDFGEN_RENDER_WORKERS"])
    # a render keeps `workers` processes busy: reserved, and never throttled below that
    assert quantity(requests["cpu"]) >= workers and quantity(limits["cpu"]) >= workers
    # reserved: the render and the run worker beside it; limit: twice the measured render, so only runaways die
    assert quantity(requests["memory"]) >= RENDER_PEAK_BYTES + RUN_WORKER_BYTES
    assert quantity(limits["memory"]) >= 2 * RENDER_PEAK_BYTES
    # a runaway layout process hits its own limit (an error naming it) before the pod is OOM-killed
    per_process = int(env_var_pairs(launcher_values(values)["envVars"])["PDFGEN_RENDER_MEMORY_LIMIT_MB"]) * 2**20
    assert RENDER_PEAK_BYTES < per_process <= quantity(limits["memory"]) / 2


def test_jobs_run_their_steps_in_the_run_pod():
    """The K8sRunLauncher gives each run a pod; the steps run inside it (in-process executor, no pod per step),
    which is what the pod sizing above assumes. The executor's config passes its own schema."""
    from pdfgen_pipeline.definitions import defs

    for name in ("publish_ouvrage", "discover_ouvrages", "preview_ouvrage", "render_tableau", "refresh_catalogue"):
        job = defs.resolve_job_def(name)
        assert job.executor_def.name == dg.in_process_executor.name, name
    job = defs.resolve_job_def("discover_ouvrages")
    dg.validate_run_config(job, {"execution": {"config": {"retries": {"enabled": {}}}}})
    with pytest.raises(dg.DagsterInvalidConfigError):
        dg.validate_run_config(job, {"execution": {"config": {"max_concurrent": 4}}})  # a multiprocess option


def test_code_server_and_run_pods_share_the_pipeline_settings(values):
    dep = deployment(values)
    launcher = launcher_values(values)
    pairs = env_var_pairs(launcher["envVars"])
    urls = {n for n in resources_env_vars() if n.startswith("PDFGEN_") and n.endswith("_URL")}
    assert {n: dep["env"].get(n) for n in urls} == {n: pairs.get(n) for n in urls}
    assert all(dep["env"][n].startswith("s3://") for n in urls)
    assert dep["envSecrets"] == launcher["envSecrets"]


def test_code_server_resources_do_not_leak_into_run_pods(values):
    """With `includeConfigInLaunchedRuns` on, the chart passes the code server's resources to the run pods,
    where they override the run launcher's: either it is off or the code server sets no resources."""
    dep = deployment(values)
    inherited = dep.get("includeConfigInLaunchedRuns", {"enabled": True})["enabled"]
    assert not (inherited and dep.get("resources")), "run pods would be sized like the code server"


def test_user_deployment_serves_the_definitions(values):
    dep = deployment(values)
    assert values["dagster-user-deployments"]["enabled"] is True
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", dep["name"]), "Kubernetes name"
    args = dep["codeServerArgs"]
    assert args[args.index("-m") + 1] == PYPROJECT["tool"]["dagster"]["module_name"]
    assert dep["image"]["tag"] not in ("", "latest")
    # the container args the chart writes (deployment-user.yaml; the image's entrypoint runs them as is)
    chart_args = ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", str(dep["port"]), *args]
    out = subprocess.run([str(Path(sys.executable).parent / "dagster"), *chart_args[1:], "--help"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]


def test_readme_creates_the_secrets_the_values_name(values):
    readme = (REPO / "README.md").read_text(encoding="utf-8").replace("\\\n", " ")
    pg = re.search(rf"create secret generic {values['global']['postgresqlSecretName']}\b(.*)", readme)
    assert pg and "--from-literal=postgresql-password=" in pg.group(1)
    for secret in launcher_values(values)["envSecrets"]:
        line = re.search(rf"create secret generic {secret['name']}\b(.*)", readme)
        assert line, f"README does not create the secret {secret['name']}"
        keys = set(re.findall(r"--from-literal=(\w+)=", line.group(1)))
        needed = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"}
        assert needed <= keys and keys & {"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"}, keys


def test_chart_version_is_the_pinned_dagster_release():
    pinned = next(d.split("==")[1] for d in PYPROJECT["project"]["dependencies"] if d.startswith("dagster=="))
    header = HELM_VALUES.read_text(encoding="utf-8").split("\n\n", 1)[0]
    commands = [line for line in (REPO / "README.md").read_text(encoding="utf-8").splitlines()
                + header.splitlines() if "helm upgrade --install" in line]
    assert len(commands) >= 2, "helm command missing from README or the values' header"
    for line in commands:
        assert f"--version {pinned}" in line and "-f deploy/helm/values.yaml" in line, line


# ----------------------------------------------------------------------------- instance settings

def test_chart_instance_passes_dagster_instance_validation(values, tmp_path):
    config = instance_config(chart_instance(values), tmp_path)
    assert config["run_launcher"]["class"] == "K8sRunLauncher"


def test_chart_instance_matches_dagster_yaml(values, tmp_path):
    """Same run queue, pools, retries and monitoring as the repository's dagster.yaml (compose, make dev)."""
    (tmp_path / "chart").mkdir()
    (tmp_path / "repo").mkdir()
    chart = instance_config(chart_instance(values), tmp_path / "chart")
    repo = instance_config(load_yaml(DAGSTER_YAML), tmp_path / "repo")
    assert chart["run_coordinator"]["class"] == repo["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert chart["concurrency"] == repo["concurrency"]
    assert chart["run_retries"] == repo["run_retries"]
    mon_chart, mon_repo = chart["run_monitoring"], repo["run_monitoring"]
    for key in ("enabled", "max_resume_run_attempts", "poll_interval_seconds", "free_slots_after_run_end_seconds"):
        assert mon_chart.get(key) == mon_repo.get(key), key
    for key in ("start_timeout_seconds", "cancel_timeout_seconds"):  # pods may wait for a node: longer is fine
        assert mon_chart[key] >= mon_repo[key], key
    assert chart["telemetry"] == repo["telemetry"]
    scheme = load_yaml(DAGSTER_YAML)["storage"]["postgres"]["postgres_db"]["scheme"]
    assert values["postgresql"]["postgresqlScheme"] == scheme


def test_chart_refuses_run_limits_set_twice(values):
    """The reproduction above must fail where the chart fails (guards the checks it relies on)."""
    broken = yaml.safe_load(yaml.safe_dump(values))
    broken["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]["maxConcurrentRuns"] = 2
    with pytest.raises(AssertionError, match="maxConcurrentRuns"):
        chart_instance(broken)
