"""The image, checked without a Docker engine: the Dockerfile, its build context and the shared system packages."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from pdfgen_pipeline_tests.deploy.common import (
    DOCKERIGNORE,
    REPO,
    context_copies,
    context_files,
    dockerfile,
    dockerfile_instructions,
    final_stage,
    is_ignored,
    parse_copy,
    parse_dockerignore,
    stage_env,
)

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
SCRIPT = "scripts/install-system-deps.sh"
ENTRYPOINT = REPO / "deploy" / "docker-entrypoint.sh"


# ----------------------------------------------------------------------------- the parsers themselves

def test_dockerfile_parser_joins_continuations_and_reads_copy_forms():
    text = ("# syntax=docker/dockerfile:1\nARG X=1\nFROM a AS b\nRUN one \\\n  # comment\n  two\n"
            "COPY --chown=1:1 --chmod=0755 src/ other.txt /dst/\nFROM c\nCOPY --from=b /x /y\n"
            'ADD ["with space.txt", "/z"]\n')
    ins = dockerfile_instructions(text)
    assert [(i.stage, i.keyword) for i in ins] == [(-1, "ARG"), (0, "FROM"), (0, "RUN"), (0, "COPY"), (1, "FROM"),
                                                  (1, "COPY"), (1, "ADD")]
    assert ins[2].args == "one two"
    copy = parse_copy(ins[3])
    assert (copy.sources, copy.dest, copy.flags) == (["src/", "other.txt"], "/dst/", {"chown": "1:1",
                                                                                     "chmod": "0755"})
    assert parse_copy(ins[5]).flags == {"from": "b"}
    assert parse_copy(ins[6]).sources == ["with space.txt"]


@pytest.mark.parametrize(("rules", "path", "ignored"), [
    ("var", "var/generated/x.pdf", True),
    ("var", "pdfgen_pipeline/var.py", False),
    ("**/__pycache__", "pdfgen_pipeline/render/__pycache__/pdf.cpython-311.pyc", True),
    ("**/__pycache__", "__pycache__/x.pyc", True),
    ("**/*.py[cod]", "a/b/c.pyc", True),
    ("**/*.py[cod]", "a/b/c.py", False),
    ("*.log", "x.log", True),
    ("*.log", "sub/x.log", False),  # `*` does not cross directories
    ("deploy/compose*.yaml", "deploy/compose.yaml", True),
    ("deploy/compose*.yaml", "deploy/workspace-grpc.yaml", False),
    ("**\n!pyproject.toml", "pyproject.toml", False),
    ("**\n!pyproject.toml", "README.md", True),
    ("docs\n!docs/keep.md", "docs/keep.md", False),
    ("!docs/keep.md\ndocs", "docs/keep.md", True),  # the last matching rule decides
])
def test_dockerignore_matcher_follows_docker_rules(rules: str, path: str, ignored: bool):
    assert is_ignored(path, parse_dockerignore(rules)) is ignored


# ----------------------------------------------------------------------------- build context

def test_build_context_holds_every_copied_path():
    """Every COPY/ADD source exists, and neither it nor any file it holds is excluded by .dockerignore."""
    rules = parse_dockerignore(DOCKERIGNORE.read_text(encoding="utf-8"))
    copies = context_copies()
    assert copies, "no COPY from the build context found in the Dockerfile"
    problems = []
    for copy in copies:
        for source in copy.sources:
            assert not any(ch in source for ch in "*?["), f"glob source {source!r}: extend this test"
            source = source.strip("/")
            if not (REPO / source).exists():
                problems.append(f"{source}: missing from the repository")
                continue
            files = context_files(REPO, source)
            assert files, f"{source}: nothing to copy"
            problems += [f"{f}: excluded by .dockerignore (COPY {source})" for f in files if is_ignored(f, rules)]
    assert not problems, "\n".join(problems)


def test_build_context_leaves_out_local_state():
    rules = parse_dockerignore(DOCKERIGNORE.read_text(encoding="utf-8"))
    for path in (".git/config", ".venv/bin/python", "var/dagster_home/dagster.yaml",
                 "pdfgen_pipeline_tests/conftest.py", "pdfgen_pipeline/render/__pycache__/pdf.cpython-311.pyc",
                 "pdfgen_pipeline_tests/artifacts/a.pdf", ".pytest_cache/v/cache", "pdfgen_pipeline.egg-info/PKG-INFO",
                 ".env"):
        assert is_ignored(path, rules), f"{path} would be sent to the Docker daemon"


def test_package_data_is_in_the_copied_sources():
    """What setuptools packages (templates, styles) is under a copied directory, so the wheel built in the
    image has it; and the project metadata files the build reads are copied too."""
    copied = {s.strip("/") for c in context_copies() for s in c.sources}
    assert {"pyproject.toml", "README.md", "pdfgen_pipeline"} <= copied  # readme = "README.md" in pyproject
    for pattern in PYPROJECT["tool"]["setuptools"]["package-data"]["pdfgen_pipeline"]:
        assert list((REPO / "pdfgen_pipeline").glob(pattern)), pattern


# ----------------------------------------------------------------------------- the image

def test_base_image_python_satisfies_requires_python():
    args = {}
    for ins in dockerfile():
        if ins.keyword == "ARG" and ins.stage == -1:
            key, _, value = ins.args.partition("=")
            args[key] = value.strip('"')
    images = [re.sub(r"\$\{?(\w+)\}?", lambda m: args[m.group(1)], i.args.split()[0])
              for i in dockerfile() if i.keyword == "FROM"]
    assert len(images) >= 2, "multi-stage build expected (builder + runtime)"
    minimum = tuple(int(x) for x in PYPROJECT["project"]["requires-python"].removeprefix(">=").split("."))
    for image in images:
        m = re.fullmatch(r"python:(\d+)\.(\d+)-slim(?:-\w+)?", image)
        assert m, f"{image}: expected an official slim Python image"
        assert (int(m.group(1)), int(m.group(2))) >= minimum, image


def test_runtime_stage_runs_as_non_root_with_dagster_home():
    last = final_stage()
    users = [i.args for i in dockerfile() if i.keyword == "USER" and i.stage == last]
    assert users and users[-1].split(":")[0] not in ("root", "0"), users
    env = stage_env(last)
    assert env["DAGSTER_HOME"] == "/opt/dagster/dagster_home"
    assert "/opt/venv/bin" in env["PATH"].split(":")
    copied_venv = [c for c in (parse_copy(i) for i in dockerfile() if i.keyword == "COPY" and i.stage == last)
                   if c.flags.get("from")]
    assert any(c.sources == ["/opt/venv"] for c in copied_venv), "the runtime stage copies the builder's venv"


def test_instance_yaml_is_the_repository_dagster_yaml_in_dagster_home():
    env = stage_env(final_stage())
    dests = {c.dest: c.sources for c in context_copies() if c.stage == final_stage()}
    assert dests.get(f"{env['DAGSTER_HOME']}/dagster.yaml") == ["dagster.yaml"]


def test_dagster_k8s_in_image_matches_the_pinned_dagster_release():
    """Run pods of the Helm deployment need dagster-k8s, of the same release line as the pinned integrations."""
    pins = dict(re.findall(r'"(dagster-[a-z0-9-]+)==([\d.]+)"', (REPO / "pyproject.toml").read_text()))
    extra = next(i.args for i in dockerfile() if i.keyword == "ARG" and i.args.startswith("EXTRA_PACKAGES="))
    packages = dict(p.split("==") for p in shlex.split(extra.partition("=")[2]))
    assert packages["dagster-k8s"] == pins["dagster-aws"] == pins["dagster-k8s"]


def _requirement_name(spec: str) -> str:
    return re.split(r"[\[<>=!~; ]", spec, maxsplit=1)[0].lower().replace("_", "-")


def test_python_dependencies_are_pinned_for_the_image_and_the_makefile():
    """The image and `make` install the same exact versions: every requirement of pyproject.toml (and the image's
    extra packages) is pinned with == in constraints.txt, and both install with `-c constraints.txt`."""
    pins = {}
    for line in (REPO / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep and version.strip(), f"constraints.txt: not an exact pin: {line!r}"
            pins[_requirement_name(name)] = version.strip()
    wanted = [*PYPROJECT["project"]["dependencies"], *PYPROJECT["project"]["optional-dependencies"]["test"]]
    extra = next(i.args for i in dockerfile() if i.keyword == "ARG" and i.args.startswith("EXTRA_PACKAGES="))
    wanted += shlex.split(extra.partition("=")[2])
    assert [spec for spec in wanted if _requirement_name(spec) not in pins] == []
    for spec in wanted:  # each pin satisfies the declared range
        assert Requirement(spec).specifier.contains(pins[_requirement_name(spec)], prereleases=True), spec
    builder_pip = [i.args for i in dockerfile() if i.keyword == "RUN" and "pip install" in i.args
                   and "constraints.txt" in i.args]
    assert builder_pip and "-c constraints.txt ." in builder_pip[0]
    assert "constraints.txt" in {src for c in context_copies() for src in c.sources}
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"pip install -q -c constraints\.txt -e '\.\[test\]'", makefile)


# ----------------------------------------------------------------------------- system packages: one script

def test_dockerfile_and_makefile_install_system_packages_with_the_same_script():
    # Dockerfile: the script is copied into the runtime stage and run there, runtime packages only
    last = final_stage()
    copied = [c.dest for c in context_copies() if c.stage == last and c.sources == [SCRIPT]]
    assert len(copied) == 1, "the runtime stage copies scripts/install-system-deps.sh"
    runs = [i.args for i in dockerfile() if i.keyword == "RUN" and i.stage == last and copied[0] in i.args]
    assert runs, "the runtime stage runs the copied script"
    assert all("--with-test" not in run for run in runs), "test packages in the runtime image"
    # Makefile: the targets that install system packages call the same script
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    recipe = re.search(r"^system-deps:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert recipe and f"bash {SCRIPT}" in recipe.group(1)
    for target in ("demo", "test"):
        assert re.search(rf"^{target}:.*\bsystem-deps\b", makefile, re.M), target


def test_install_script_accepts_its_flags_only():
    script = REPO / SCRIPT
    subprocess.run(["bash", "-n", str(script)], check=True)
    bad = subprocess.run(["bash", str(script), "--no-such-flag"], capture_output=True, text=True)
    assert bad.returncode == 2 and "usage" in bad.stderr
    text = script.read_text(encoding="utf-8")
    assert re.search(r"--clean\).*clean=1", text) and "rm -rf /var/lib/apt/lists" in text


# ----------------------------------------------------------------------------- entrypoint

def test_entrypoint_is_the_copied_script_and_runs_other_commands_as_is():
    last = final_stage()
    entry = [i.args for i in dockerfile() if i.keyword == "ENTRYPOINT" and i.stage == last]
    dest = next(c.dest for c in context_copies() if c.sources == ["deploy/docker-entrypoint.sh"])
    assert entry and dest.endswith("/" + entry[-1].strip('[]" '))
    out = subprocess.run(["sh", str(ENTRYPOINT), "echo", "passed", "through"], capture_output=True, text=True,
                         check=True)
    assert out.stdout == "passed through\n"


@pytest.mark.parametrize("role", ["code-server", "webserver", "daemon"])
def test_entrypoint_roles_are_valid_dagster_command_lines(role: str):
    """Each role's command line, with `--help` appended, is accepted by the installed Dagster CLIs."""
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "DAGSTER_WORKSPACE": "workspace.yaml"}
    out = subprocess.run(["sh", str(ENTRYPOINT), role, "--help"], capture_output=True, text=True, env=env,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Usage:" in out.stdout
