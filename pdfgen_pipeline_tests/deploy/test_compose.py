"""deploy/compose.yaml against what the processes read: dagster.yaml, resources.py, the gRPC workspace, the image."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from pdfgen_pipeline_tests.deploy.common import (
    COMPOSE,
    DAGSTER_YAML,
    REPO,
    WORKSPACE_GRPC,
    command_args,
    context_copies,
    final_stage,
    instance_env_vars,
    load_yaml,
    option,
    resources_env_vars,
    service_env,
    services_running,
    stage_env,
)

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["dagster"]
#: Read by resources.py but only as alternatives: temporary credentials, and the fallback of AWS_REGION.
OPTIONAL_AWS = {"AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION"}
#: Either one names the S3-compatible endpoint (resources.py takes AWS_ENDPOINT_URL_S3 first).
ENDPOINT_VARS = {"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE)


@pytest.fixture(scope="module")
def services(compose) -> dict[str, Mapping[str, Any]]:
    return compose["services"]


def one(found: list[tuple[str, Mapping[str, Any]]], what: str) -> tuple[str, Mapping[str, Any]]:
    assert len(found) == 1, f"expected one {what} service, found {[n for n, _ in found]}"
    return found[0]


@pytest.fixture(scope="module")
def dagster_services(services) -> dict[str, tuple[str, Mapping[str, Any]]]:
    """The code server, webserver and daemon services, found by the program their command runs."""
    return {
        "code-server": one(list(services_running(services, "dagster", "code-server", "start")), "code server"),
        "webserver": one(list(services_running(services, "dagster-webserver")), "webserver"),
        "daemon": one(list(services_running(services, "dagster-daemon", "run")), "daemon"),
    }


def test_variable_lists_are_derived_from_the_sources():
    """Guards the two derivations above: they must find what the brief of the deployment names."""
    assert instance_env_vars() == {"DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD",
                                   "DAGSTER_PG_DB"}
    assert {"PDFGEN_REFERENTIEL_URL", "PDFGEN_PREPARATION_URL", "PDFGEN_GENERATED_URL", "PDFGEN_ARTIFACTS_URL",
            "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", *ENDPOINT_VARS} <= resources_env_vars()


def test_every_dagster_process_gets_the_instance_variables(dagster_services):
    needed = instance_env_vars()
    for role, (name, service) in dagster_services.items():
        missing = needed - {k for k, v in service_env(service).items() if v}
        assert not missing, f"{role} ({name}) lacks {sorted(missing)} read by dagster.yaml"


def test_pipeline_processes_get_the_store_and_s3_variables(dagster_services):
    """The code server (sensors; runs are its subprocesses with the default run launcher) and the daemon."""
    read = resources_env_vars()
    needed = (read - OPTIONAL_AWS - ENDPOINT_VARS)
    for role in ("code-server", "daemon"):
        name, service = dagster_services[role]
        env = {k for k, v in service_env(service).items() if v}
        assert not needed - env, f"{role} ({name}) lacks {sorted(needed - env)} read by resources.py"
        assert env & ENDPOINT_VARS, f"{role} ({name}) has no S3 endpoint variable"


def test_s3_settings_point_at_the_stack(services, dagster_services):
    """Stores on S3, the endpoint is a service of the stack, the bucket set-up sees the same stores."""
    _, code_server = dagster_services["code-server"]
    env = service_env(code_server)
    urls = {k: v for k, v in env.items() if k.startswith("PDFGEN_") and k.endswith("_URL")}
    assert urls and all(v.startswith("s3://") for v in urls.values()), urls
    endpoint = urlsplit(env.get("AWS_ENDPOINT_URL_S3") or env["AWS_ENDPOINT_URL"])
    assert endpoint.hostname in services, f"endpoint host {endpoint.hostname} is not a service"
    init_name, init = one(list(services_running(services, "init-s3")), "bucket set-up")
    init_env = service_env(init)
    for key in (*urls, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_ENDPOINT_URL_S3"):
        assert init_env.get(key) == env.get(key), f"{init_name} and the code server disagree on {key}"
    assert code_server["depends_on"][init_name]["condition"] == "service_completed_successfully"


def test_postgres_service_matches_the_instance_variables(services, dagster_services):
    _, code_server = dagster_services["code-server"]
    env = service_env(code_server)
    pg = services[env["DAGSTER_PG_HOST"]]
    assert pg["image"].startswith("postgres:")
    pg_env = service_env(pg)
    assert (pg_env["POSTGRES_USER"], pg_env["POSTGRES_PASSWORD"], pg_env["POSTGRES_DB"]) == (
        env["DAGSTER_PG_USER"], env["DAGSTER_PG_PASSWORD"], env["DAGSTER_PG_DB"])
    assert env["DAGSTER_PG_PORT"] == "5432"
    for role, (name, service) in dagster_services.items():
        assert service["depends_on"][env["DAGSTER_PG_HOST"]]["condition"] == "service_healthy", (role, name)
        for key in instance_env_vars():
            assert service_env(service)[key] == env[key], f"{name}: {key} differs from the code server's"


def test_grpc_workspace_points_at_the_code_server(dagster_services):
    name, code_server = dagster_services["code-server"]
    args = command_args(code_server)
    port = option(args, "-p", "--port")
    assert option(args, "-h", "--host") == "0.0.0.0"
    assert option(args, "-m", "--module-name") == PYPROJECT["module_name"]
    (entry,) = load_yaml(WORKSPACE_GRPC)["load_from"]
    grpc = entry["grpc_server"]
    assert (grpc["host"], str(grpc["port"]), grpc["location_name"]) == (name, port, PYPROJECT["code_location_name"])
    assert code_server["healthcheck"]["test"][-2:] == ["-p", port]
    for role in ("webserver", "daemon"):
        assert dagster_services[role][1]["depends_on"][name]["condition"] == "service_healthy"


def test_grpc_workspace_is_a_valid_dagster_workspace():
    from dagster._core.workspace.config_schema import ensure_workspace_config

    ensure_workspace_config(load_yaml(WORKSPACE_GRPC), str(WORKSPACE_GRPC.parent))


def test_webserver_and_daemon_read_the_workspace_copied_into_the_image(dagster_services):
    copied = {c.dest: c.sources for c in context_copies()}
    for role in ("webserver", "daemon"):
        workspace = option(command_args(dagster_services[role][1]), "-w", "--workspace")
        assert copied.get(workspace) == ["deploy/workspace-grpc.yaml"], (role, workspace)


def test_services_use_the_repository_dagster_yaml(services):
    """The instance is the image's copy of dagster.yaml: no service points DAGSTER_HOME elsewhere, and any
    file mounted over it is the repository's dagster.yaml."""
    home = stage_env(final_stage())["DAGSTER_HOME"]
    for name, service in services.items():
        assert service_env(service).get("DAGSTER_HOME", home) == home, name
        for volume in service.get("volumes", []):
            source, _, target = (volume if isinstance(volume, str) else f"{volume['source']}:{volume['target']}"
                                 ).partition(":")
            if target.split(":")[0] in (home, f"{home}/dagster.yaml"):
                assert (COMPOSE.parent / source).resolve() == DAGSTER_YAML, f"{name} mounts {source} over {home}"


def test_image_services_are_built_from_the_repository(services):
    for name, service in services.items():
        if "build" not in service:
            continue
        build = service["build"]
        context = (COMPOSE.parent / build["context"]).resolve()
        assert context == REPO, name
        assert (context / build.get("dockerfile", "Dockerfile")).is_file(), name


def test_readme_documents_the_variables(dagster_services):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Running in production", 1)
    assert len(section) == 2, "README has no 'Running in production' section"
    names = {k for _, s in dagster_services.values() for k in service_env(s)}
    missing = sorted(n for n in names if f"`{n}`" not in readme)
    assert not missing, f"README does not document {missing}"


def test_commands_are_accepted_by_the_dagster_clis(dagster_services):
    """Each Dagster service's command, with `--help` appended, parses (options exist) in the installed CLIs."""
    import subprocess
    import sys

    bindir = Path(sys.executable).parent
    for role, (name, service) in dagster_services.items():
        args = command_args(service)
        out = subprocess.run([str(bindir / args[0]), *args[1:], "--help"], capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == 0, f"{role} ({name}): {out.stderr[-2000:]}"
