"""Readers shared by the deployment tests: the Dockerfile, .dockerignore rules, compose services, YAML files."""

from __future__ import annotations

import ast
import json
import re
import shlex
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
COMPOSE = REPO / "deploy" / "compose.yaml"
WORKSPACE_GRPC = REPO / "deploy" / "workspace-grpc.yaml"
HELM_VALUES = REPO / "deploy" / "helm" / "values.yaml"
DAGSTER_YAML = REPO / "dagster.yaml"
RESOURCES_PY = REPO / "pdfgen_pipeline" / "defs" / "resources.py"


def load_yaml(path: Path) -> Any:
    """A YAML file parsed with PyYAML's safe loader (merge keys `<<` resolved)."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def env_refs(node: Any) -> set[str]:
    """Every variable named by an `{env: VAR}` mapping anywhere in a parsed YAML document."""
    found: set[str] = set()
    if isinstance(node, Mapping):
        if set(node) == {"env"} and isinstance(node["env"], str):
            found.add(node["env"])
        for value in node.values():
            found |= env_refs(value)
    elif isinstance(node, list):
        for item in node:
            found |= env_refs(item)
    return found


def instance_env_vars() -> set[str]:
    """The variables dagster.yaml reads (`{env: VAR}` anywhere in it)."""
    return env_refs(load_yaml(DAGSTER_YAML))


def resources_env_vars() -> set[str]:
    """The variables resources.py reads: every `AWS_*` / `PDFGEN_*` name among its string constants (the keys of
    DEFAULTS, the names given to `os.environ.get` and `_env_or_none`, the endpoint alternatives)."""
    tree = ast.parse(RESOURCES_PY.read_text(encoding="utf-8"))
    return {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and re.fullmatch(r"(?:AWS|PDFGEN)_[A-Z0-9_]+", node.value)}


# ----------------------------------------------------------------------------- Dockerfile

@dataclass
class Instruction:
    """One Dockerfile instruction, continuation lines joined."""

    stage: int  # index of the FROM it belongs to (-1 before the first FROM)
    keyword: str  # upper case: FROM, COPY, RUN...
    args: str
    line: int


@dataclass
class Copy:
    """A COPY or ADD: sources relative to the build context (or to another stage with --from)."""

    stage: int
    keyword: str
    sources: list[str]
    dest: str
    flags: dict[str, str] = field(default_factory=dict)


def dockerfile_instructions(text: str) -> list[Instruction]:
    """The instructions of a Dockerfile: comments dropped, backslash continuations joined."""
    out: list[Instruction] = []
    stage = -1
    buffer: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not buffer and (not line or line.startswith("#")):
            continue
        if buffer and line.startswith("#"):
            continue  # comment lines inside a continued instruction are dropped, as Docker does
        if not buffer:
            start = number
        if line.endswith("\\"):
            buffer.append(line[:-1].strip())
            continue
        buffer.append(line)
        joined = " ".join(part for part in buffer if part)
        buffer = []
        keyword, _, args = joined.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        out.append(Instruction(stage, keyword, args.strip(), start))
    return out


def parse_copy(instruction: Instruction) -> Copy:
    """Sources, destination and flags of a COPY/ADD (shell or JSON form)."""
    args = instruction.args
    flags: dict[str, str] = {}
    while args.startswith("--"):
        flag, _, args = args.partition(" ")
        name, _, value = flag[2:].partition("=")
        flags[name] = value
        args = args.strip()
    parts = json.loads(args) if args.startswith("[") else shlex.split(args)
    return Copy(instruction.stage, instruction.keyword, parts[:-1], parts[-1], flags)


@cache
def dockerfile() -> list[Instruction]:
    return dockerfile_instructions(DOCKERFILE.read_text(encoding="utf-8"))


def final_stage() -> int:
    return max(i.stage for i in dockerfile())


def context_copies() -> list[Copy]:
    """The COPY/ADD instructions that read the build context (not another stage)."""
    copies = [parse_copy(i) for i in dockerfile() if i.keyword in ("COPY", "ADD")]
    return [c for c in copies if "from" not in c.flags]


def stage_env(stage: int) -> dict[str, str]:
    """ENV values of a stage (`ENV K=V K2=V2` and `ENV K V` forms)."""
    env: dict[str, str] = {}
    for ins in dockerfile():
        if ins.stage != stage or ins.keyword != "ENV":
            continue
        if "=" not in ins.args.split()[0]:
            key, _, value = ins.args.partition(" ")
            env[key] = value.strip()
            continue
        for token in shlex.split(ins.args):
            key, _, value = token.partition("=")
            env[key] = value
    return env


# ----------------------------------------------------------------------------- .dockerignore

@dataclass
class IgnoreRule:
    pattern: str
    exclusion: bool  # a `!pattern` re-includes
    regex: re.Pattern[str]


def _glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Docker's pattern syntax (Go filepath.Match plus `**`) as a regular expression on slash paths."""
    out = ""
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):  # `**/`: zero or more directories
                out += "(?:.*/)?"
                i += 1
            else:
                out += ".*"
            continue
        if c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                raise ValueError(f"unterminated character class in {pattern!r}")
            body = pattern[i + 1:end]
            out += "[" + ("^" + body[1:] if body.startswith("^") else body) + "]"
            i = end
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
        else:
            out += re.escape(c)
        i += 1
    return re.compile(out + r"\Z")


def parse_dockerignore(text: str) -> list[IgnoreRule]:
    """The rules of a .dockerignore, in order (comments and blank lines dropped, paths cleaned)."""
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclusion = line.startswith("!")
        pattern = line[1:].strip() if exclusion else line
        pattern = re.sub(r"/+", "/", pattern).strip("/")
        pattern = "/".join(p for p in pattern.split("/") if p not in ("", "."))
        rules.append(IgnoreRule(pattern, exclusion, _glob_to_regex(pattern)))
    return rules


def is_ignored(path: str, rules: list[IgnoreRule]) -> bool:
    """Whether the context path (relative, slash-separated) is left out of the build context.

    As Docker's pattern matcher: a rule matches a path or any of its parent directories; the last rule that
    matches decides, `!` rules re-including.
    """
    parts = path.strip("/").split("/")
    candidates = ["/".join(parts[:n]) for n in range(len(parts), 0, -1)]
    ignored = False
    for rule in rules:
        if any(rule.regex.match(c) for c in candidates):
            ignored = not rule.exclusion
    return ignored


def context_files(root: Path, source: str) -> list[str]:
    """The files of the repository under `source` (git's tracked files when there is a checkout)."""
    if (root / ".git").exists():
        listed = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--", source], capture_output=True,
                                check=True).stdout.decode()
        files = [f for f in listed.split("\0") if f]
        if files:
            return files
    base = root / source
    if base.is_file():
        return [source]
    return sorted(p.relative_to(root).as_posix() for p in base.rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts)


# ----------------------------------------------------------------------------- compose

def service_env(service: Mapping[str, Any]) -> dict[str, str]:
    """A compose service's `environment`, list or mapping form, as a mapping."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.partition("=") for item in env)
        return {k: v for k, _, v in pairs}
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def command_args(service: Mapping[str, Any]) -> list[str]:
    """A compose service's `command` as an argument list."""
    command = service.get("command") or []
    return shlex.split(command) if isinstance(command, str) else [str(a) for a in command]


def option(args: list[str], *names: str) -> str | None:
    """The value following the first of `names` in an argument list (`-p 4000` or `--port=4000`)."""
    for i, arg in enumerate(args):
        for name in names:
            if arg == name and i + 1 < len(args):
                return args[i + 1]
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


def services_running(services: Mapping[str, Any], *program: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """The compose services whose command starts with `program` (e.g. "dagster", "code-server")."""
    for name, service in services.items():
        if command_args(service)[:len(program)] == list(program):
            yield name, service
