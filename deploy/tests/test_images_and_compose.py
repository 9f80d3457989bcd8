"""The container images (deploy/docker/Dockerfile, .dockerignore) and docker-compose.yml.

No Docker engine is needed: the Dockerfile and the ignore file are read as text, with the
semantics Docker gives them, and docker-compose.yml is interpolated the way Compose does it and
validated against the Compose Specification's own JSON schema (from compose-go, downloaded once
through the Go module proxy into the Huddle cache, ``~/.cache/huddle/compose-spec/``).
"""

from __future__ import annotations

import ast
import hashlib
import io
import json
import os
import re
import shlex
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from huddle_contracts.topics import SERVICES, TOPICS, topic_configs
from huddle_local.kafka import KAFKA_VERSION, cache_root

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE_FILE = ROOT / "docker-compose.yml"

#: The Compose Specification's schema, as shipped by compose-go (what `docker compose` validates
#: with). Pinned, and checked against its SHA-256 once downloaded.
COMPOSE_GO_VERSION = "v2.16.2"
COMPOSE_SCHEMA_SHA256 = "f266dcbb043229405d7cedd5aec918f9102c2b3d5e3850808fdd8edd564a43ff"
COMPOSE_GO_PROXY = "https://proxy.golang.org/github.com/compose-spec/compose-go/v2/@v"

#: What an image may take from the repository besides its own service.
SHARED_SOURCES = {
    "pyproject.toml",
    "uv.lock",
    "libs/contracts/pyproject.toml",
    "libs/contracts/src",
    "libs/runtime/pyproject.toml",
    "libs/runtime/src",
}
SECRET_NAME = re.compile(r"KEY|SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL|PRIVATE|JWKS|DATABASE_URL")


def own_sources(service: str) -> set[str]:
    return {f"services/{service}/pyproject.toml", f"services/{service}/src"}


@cache
def default_port(service: str) -> int:
    """The service's port, read from its ServiceDefinition (without importing the service)."""
    source = ROOT / "services" / service / "src" / f"huddle_{service}" / "service.py"
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.keyword) and node.arg == "default_port":
            assert isinstance(node.value, ast.Constant) and isinstance(node.value.value, int)
            return node.value.value
    raise AssertionError(f"no default_port in {source}")


# ------------------------------------------------------------------------------ Dockerfile


@dataclass
class Instruction:
    keyword: str
    args: str

    @property
    def flags(self) -> dict[str, str]:
        """``--name=value`` flags at the start of the arguments (COPY --from=…, RUN --mount=…)."""
        found: dict[str, str] = {}
        for token in self.args.split():
            if not token.startswith("--"):
                break
            name, _, value = token[2:].partition("=")
            found[name] = value
        return found

    @property
    def operands(self) -> list[str]:
        """The arguments without leading flags; the JSON (exec) form is decoded."""
        text = self.args
        while text.startswith("--"):
            text = text.split(None, 1)[1] if " " in text else ""
        if text.startswith("["):
            decoded: list[str] = json.loads(text)
            return decoded
        return shlex.split(text)


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


@dataclass
class Dockerfile:
    global_args: dict[str, str]
    stages: list[Stage]
    instructions: list[Instruction]

    def stage(self, name: str) -> Stage:
        matches = [s for s in self.stages if s.name == name]
        assert len(matches) == 1, f"expected one stage named {name!r}"
        return matches[0]

    def closure(self, target: str) -> list[Stage]:
        """Every stage ``target`` is built from (its bases and what it copies --from)."""
        names = {s.name for s in self.stages if s.name}
        seen: dict[str, Stage] = {}
        pending = [target]
        while pending:
            name = pending.pop()
            if name in seen:
                continue
            stage = self.stage(name)
            seen[name] = stage
            if stage.base in names:
                pending.append(stage.base)
            for copy in stage.all("COPY"):
                source = copy.flags.get("from")
                if source in names:
                    pending.append(source)
        return list(seen.values())

    def resolve(self, image: str) -> str:
        """``${ARG}`` in a FROM line, replaced by the global ARG's default."""
        return re.sub(r"\$\{?(\w+)\}?", lambda m: self.global_args[m.group(1)], image)


def logical_lines(text: str) -> Iterator[str]:
    """Dockerfile lines with comments dropped and backslash continuations joined."""
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not current):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        if current.strip():
            yield current.strip()
        current = ""
    if current.strip():
        yield current.strip()


@cache
def dockerfile() -> Dockerfile:
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    instructions: list[Instruction] = []
    for line in logical_lines(DOCKERFILE.read_text()):
        keyword, _, args = line.partition(" ")
        instruction = Instruction(keyword.upper(), args.strip())
        instructions.append(instruction)
        if instruction.keyword == "FROM":
            words = instruction.operands
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name))
        elif not stages:
            if instruction.keyword == "ARG":
                arg_name, _, default = instruction.args.partition("=")
                global_args[arg_name] = default
        else:
            stages[-1].instructions.append(instruction)
    return Dockerfile(global_args, stages, instructions)


def env_names(instruction: Instruction) -> list[str]:
    words = shlex.split(instruction.args)
    if words and "=" not in words[0]:  # legacy form: ENV NAME value
        return [words[0]]
    return [w.split("=", 1)[0] for w in words]


def copied_sources(stages: list[Stage]) -> set[str]:
    """Paths COPY'd from the build context (not from another stage) by these stages."""
    sources: set[str] = set()
    for stage in stages:
        assert not stage.all("ADD"), "use COPY, not ADD"
        for copy in stage.all("COPY"):
            if "from" in copy.flags:
                continue
            *paths, _destination = copy.operands
            sources.update(p.rstrip("/") for p in paths)
    return sources


def test_the_dockerfile_has_a_target_per_service() -> None:
    names = {s.name for s in dockerfile().stages}
    assert set(SERVICES) <= names


@pytest.mark.parametrize("service", SERVICES)
def test_an_image_copies_only_its_service_and_the_shared_libraries(service: str) -> None:
    sources = copied_sources(dockerfile().closure(service))
    assert own_sources(service) <= sources, "the service's pyproject.toml and src/ are copied"
    assert {"pyproject.toml", "uv.lock"} <= sources
    assert sources <= SHARED_SOURCES | own_sources(service), (
        f"{service}'s image copies more than its service, libs/contracts and libs/runtime: "
        f"{sorted(sources - SHARED_SOURCES - own_sources(service))}"
    )


@pytest.mark.parametrize("service", SERVICES)
def test_an_image_installs_from_the_lock_file_with_uv(service: str) -> None:
    runs = [i.args for s in dockerfile().closure(service) for i in s.all("RUN")]
    syncs = [r for r in runs if re.search(r"\buv sync\b", r)]
    assert syncs, "the image is installed with uv sync"
    for sync in syncs:
        words = sync.split()
        assert "--frozen" in words, f"not from the lock file: {sync}"
        assert "--no-dev" in words, f"installs development tools: {sync}"
        assert words[words.index("--package") + 1] == f"huddle-{service}", sync
    assert any("--no-editable" in s.split() for s in syncs), (
        "the workspace is installed, not linked"
    )
    for run in runs:
        assert not re.search(r"\buv (lock|add)\b|\bpip install\b", run), f"not from the lock: {run}"


@pytest.mark.parametrize("service", SERVICES)
def test_an_image_runs_as_a_non_root_user_and_serves_by_default(service: str) -> None:
    df = dockerfile()
    final = df.stage(service)
    assert final.all("USER"), "the service's own stage sets the user it runs as"
    uid, _, gid = final.all("USER")[-1].args.partition(":")
    assert uid.isdigit() and int(uid) > 0, "a numeric, non-root UID (runAsNonRoot can check it)"
    assert not gid or (gid.isdigit() and int(gid) > 0)
    cmd = final.all("CMD")
    assert cmd and cmd[-1].operands == ["python", "-m", f"huddle_{service}", "serve"]
    # No ENTRYPOINT: `python -m huddle_<name> migrate` is the same image with another command.
    assert not any(s.all("ENTRYPOINT") for s in df.closure(service))
    exposed = [word for i in final.all("EXPOSE") for word in i.operands]
    assert exposed == [str(default_port(service))]
    # The runtime holds only the virtual environment built for this very service.
    copies = final.all("COPY") + df.stage(final.base).all("COPY")
    assert [c.flags.get("from") for c in copies] == [f"build-{service}"]


@pytest.mark.parametrize("service", SERVICES)
def test_an_image_is_slim_pinned_and_writes_no_bytecode(service: str) -> None:
    df = dockerfile()
    chain = df.closure(service)
    bases = {df.resolve(s.base) for s in chain if s.base not in {x.name for x in df.stages}}
    pythons = {b for b in bases if b.startswith("python:")}
    assert len(pythons) == 1, "builder and runtime share one base (the venv's interpreter)"
    python = pythons.pop()
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", python)
    deploy = (ROOT / "README.md").read_text().split("\n## Deploy", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`(python:[^`]+)`", deploy))
    assert named == {python}, f"README.md (Deploy) names {named}, the Dockerfile {python}"
    uv_images = bases - {b for b in bases if b.startswith("python:")}
    makefile_uv = re.search(r"^UV_VERSION\s*:=\s*(\S+)", (ROOT / "Makefile").read_text(), re.M)
    assert makefile_uv is not None
    assert uv_images == {f"ghcr.io/astral-sh/uv:{makefile_uv.group(1)}"}
    runtime = df.stage(df.stage(service).base)
    env = {n for i in runtime.all("ENV") for n in env_names(i)}
    assert "PYTHONDONTWRITEBYTECODE" in env
    assert re.search(r"PYTHONDONTWRITEBYTECODE=1\b", " ".join(i.args for i in runtime.all("ENV")))
    assert any("UV_COMPILE_BYTECODE=1" in i.args for s in chain for i in s.all("ENV")), (
        "bytecode is compiled at build time, so a read-only root filesystem costs nothing"
    )


def test_the_dockerfile_has_no_healthcheck_and_no_secrets() -> None:
    df = dockerfile()
    keywords = {i.keyword for i in df.instructions}
    assert "HEALTHCHECK" not in keywords, "the orchestrator probes /livez and /readyz"
    names = [n for i in df.instructions if i.keyword == "ENV" for n in env_names(i)]
    names += [i.args.split("=", 1)[0] for i in df.instructions if i.keyword == "ARG"]
    names += list(df.global_args)
    assert names
    leaked = [n for n in names if SECRET_NAME.search(n.upper())]
    assert not leaked, f"secrets or credentials baked into the image: {leaked}"
    text = DOCKERFILE.read_text()
    assert not re.search(r"\w+://[^/\s:@]+:[^/\s@]+@", text), "a URL with credentials"
    assert "--mount=type=secret" not in text


# ------------------------------------------------------------------------------ .dockerignore


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex (moby/patternmatcher: Go filepath.Match plus **)."""
    out, i = "", 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out += "(.*/)?"
            i += 3
            continue
        if pattern.startswith("**", i):
            out += ".*"
            i += 2
            continue
        if c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "[":
            end = pattern.index("]", i)
            out += "[" + pattern[i + 1 : end].replace("!", "^", 1) + "]"
            i = end
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
        else:
            out += re.escape(c)
        i += 1
    return re.compile(out)


@cache
def ignore_patterns() -> tuple[tuple[bool, re.Pattern[str]], ...]:
    """(re-include?, regex) per line of .dockerignore, in order."""
    patterns = []
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        include = line.startswith("!")
        path = os.path.normpath(line.removeprefix("!").strip()).lstrip("/")
        patterns.append((include, _pattern_regex(path)))
    return tuple(patterns)


def in_build_context(path: str) -> bool:
    """Docker's rule: the last pattern that matches the path or one of its parents decides."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    included = True
    for include, regex in ignore_patterns():
        if any(regex.fullmatch(p) for p in prefixes):
            included = include
    return included


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".tools/bin/uv",
        ".huddle/issuer/private.pem",
        ".huddle/postgres/PG_VERSION",
        ".git/HEAD",
        ".pytest_cache/v/cache/nodeids",
        ".mypy_cache/3.11/cache.db",
        "docs/architecture.md",
        "README.md",
        "tests/e2e/tests/test_journey.py",
        "services/intake/tests/test_support_requests.py",
        "libs/runtime/tests/unit/test_settings.py",
        "services/intake/src/huddle_intake/__pycache__/service.cpython-311.pyc",
        "services/intake/src/huddle_intake/.venv/bin/python",
        "deploy/local/src/huddle_local/cli.py",
        "deploy/docker/Dockerfile",
        "benchmarks/report.md",
        "conftest.py",
        "docker-compose.yml",
        ".env",
    ],
)
def test_dockerignore_keeps_local_state_tests_and_docs_out(path: str) -> None:
    assert not in_build_context(path)


def test_dockerignore_lets_in_exactly_what_the_images_copy() -> None:
    allowed = set(SHARED_SOURCES)
    for service in SERVICES:
        allowed |= own_sources(service)
    assert copied_sources(dockerfile().stages) == allowed
    heavy = {".git", ".venv", ".tools", ".huddle", ".mypy_cache", ".ruff_cache", ".hypothesis"}
    for name in heavy:
        assert not in_build_context(f"{name}/anything")
    sent: list[str] = []
    for directory, subdirs, files in os.walk(ROOT):
        subdirs[:] = [d for d in subdirs if d not in heavy]
        for name in files:
            relative = Path(directory, name).relative_to(ROOT).as_posix()
            if in_build_context(relative):
                sent.append(relative)
            elif any(relative == a or relative.startswith(a + "/") for a in allowed):
                assert "__pycache__" in relative or relative.endswith(".pyc"), (
                    f"{relative} is needed by an image but left out of the build context"
                )
    assert "uv.lock" in sent
    assert "services/intake/src/huddle_intake/__main__.py" in sent
    assert "libs/runtime/src/huddle_runtime/migrations/0001_outbox.sql" in sent
    stray = [p for p in sent if not any(p == a or p.startswith(a + "/") for a in allowed)]
    assert not stray, f"sent to the builder but never copied: {stray[:10]}"


# ------------------------------------------------------------------------------ docker-compose.yml


def compose_schema() -> dict[str, Any]:
    """compose-spec.json from compose-go, from the cache or (first time) the Go module proxy."""
    cached = cache_root() / "compose-spec" / COMPOSE_GO_VERSION / "compose-spec.json"
    if not cached.exists():
        url = f"{COMPOSE_GO_PROXY}/{COMPOSE_GO_VERSION}.zip"
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                archive = zipfile.ZipFile(io.BytesIO(response.read()))
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            pytest.fail(
                f"the Compose Specification schema is not cached and could not be downloaded "
                f"({exc}). Fetch {url} (versions: {COMPOSE_GO_PROXY}/list) on a connected "
                f"machine and put its schema/compose-spec.json at {cached}."
            )
        member = next(n for n in archive.namelist() if n.endswith("/schema/compose-spec.json"))
        data = archive.read(member)
        digest = hashlib.sha256(data).hexdigest()
        assert digest == COMPOSE_SCHEMA_SHA256, f"{url}: unexpected compose-spec.json ({digest})"
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}.partial")
        partial.write_bytes(data)
        partial.replace(cached)
    data = cached.read_bytes()
    assert hashlib.sha256(data).hexdigest() == COMPOSE_SCHEMA_SHA256, f"{cached} is corrupt"
    schema: dict[str, Any] = json.loads(data)
    return schema


_VARIABLE = re.compile(
    r"\$\$|\$\{(?P<braced>\w+)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}|\$(?P<bare>[A-Za-z_]\w*)"
)


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's variable interpolation (``$$``, ``${VAR}``, ``${VAR:-default}`` …)."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("braced") or match.group("bare")
        op, arg = match.group("op"), match.group("arg") or ""
        current = env.get(name)
        if op in (":-", "-"):
            unset = current is None or (op == ":-" and current == "")
            return arg if unset else str(current)
        if op in (":?", "?"):
            if current is None or (op == ":?" and current == ""):
                raise AssertionError(f"${{{name}}} is required: {arg}")
            return current
        if op in (":+", "+"):
            return arg if current else ""
        return current or ""

    return _VARIABLE.sub(substitute, value)


@cache
def raw_compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return document


@cache
def compose() -> dict[str, Any]:
    """docker-compose.yml as Compose sees it with no variables set (every default applies)."""
    document: dict[str, Any] = interpolate(raw_compose(), {})
    return document


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on", {})
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in deps.items()}


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    schema = compose_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    for document in (compose(), raw_compose()):
        errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
        assert not errors, "\n".join(
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:10]
        )


def test_compose_runs_every_service_with_its_own_image_and_migration() -> None:
    found = services()
    assert {"kafka", "postgres", "kafka-topics"} <= set(found)
    for name in SERVICES:
        service, migrate = found[name], found[f"{name}-migrate"]
        assert service["build"]["target"] == name
        assert service["build"]["dockerfile"] == "deploy/docker/Dockerfile"
        assert service["build"]["context"] == "."
        assert service["command"] == ["python", "-m", f"huddle_{name}", "serve"]
        assert migrate["image"] == service["image"], "migrations run from the service's image"
        assert migrate["build"] == service["build"]
        assert migrate["command"] == ["python", "-m", f"huddle_{name}", "migrate"]
        assert migrate.get("restart") == "no", "a one-shot step"
    huddle = {n for n, s in found.items() if str(s.get("image", "")).startswith("huddle/")}
    assert huddle == set(SERVICES) | {f"{n}-migrate" for n in SERVICES}


def test_the_topic_step_creates_every_registry_topic_and_dead_letter_topic() -> None:
    step = services()["kafka-topics"]
    assert step["image"] == services()["kafka"]["image"]
    assert depends_on(step) == {"kafka": "service_healthy"}
    assert step.get("restart") == "no"
    script = "\n".join(step["command"])
    assert "/opt/kafka/bin/kafka-topics.sh" in script
    assert "--create" in script
    assert "--config" in script and "retention.ms=" in script
    created = {
        m.group(1): (int(m.group(2)), m.group(3))
        for m in re.finditer(r"^\s*create\s+(\S+)\s+(\d+)\s+(\d+)\s*$", script, re.M)
    }
    partitions = {n: t.partitions for t in TOPICS for n in (t.name, t.dead_letter)}
    expected = {n: (partitions[n], c["retention.ms"]) for n, c in topic_configs().items()}
    assert created == expected
    assert len(created) == 2 * len(TOPICS)


def test_kafka_and_postgres_are_pinned_and_health_checked() -> None:
    found = services()
    assert found["kafka"]["image"] == f"apache/kafka:{KAFKA_VERSION}", "the local stack's Kafka"
    assert re.fullmatch(r"apache/kafka:4\.\d+\.\d+", found["kafka"]["image"])
    assert re.fullmatch(r"postgres:18(\.\d+)?(-\w+)?", found["postgres"]["image"])
    for service in found.values():
        if "build" in service:
            continue
        image = service["image"]
        assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), image
    env = found["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller", "KRaft, one node"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false", "topics come from the registry"
    assert "INTERNAL://kafka:19092" in env["KAFKA_ADVERTISED_LISTENERS"]
    for name in ("kafka", "postgres"):
        test = found[name]["healthcheck"]["test"]
        assert test[0] in ("CMD", "CMD-SHELL") and len(test) > 1


def test_services_start_after_healthy_infrastructure_topics_and_their_migration() -> None:
    found = services()
    for name in SERVICES:
        assert depends_on(found[name]) == {
            "kafka": "service_healthy",
            "postgres": "service_healthy",
            "kafka-topics": "service_completed_successfully",
            f"{name}-migrate": "service_completed_successfully",
        }
        assert depends_on(found[f"{name}-migrate"]) == {"postgres": "service_healthy"}
    # `docker compose up --wait` accepts a one-shot step's exit only when a long-running
    # service waits for it to complete.
    one_shots = {n for n, s in found.items() if s.get("restart") == "no"}
    assert one_shots == {"kafka-topics"} | {f"{n}-migrate" for n in SERVICES}
    adopted = {
        dependency
        for service in found.values()
        if service.get("restart") != "no"
        for dependency, condition in depends_on(service).items()
        if condition == "service_completed_successfully"
    }
    assert adopted == one_shots


def test_services_run_locally_with_the_local_issuer_and_reach_each_other() -> None:
    found = services()
    kafka_env = found["kafka"]["environment"]
    postgres_env = found["postgres"]["environment"]
    for name in SERVICES:
        service = found[name]
        env = service["environment"]
        assert env["HUDDLE_ENVIRONMENT"] == "local"
        assert env["HUDDLE_HTTP_HOST"] == "0.0.0.0", "reachable through the published port"
        assert f"INTERNAL://{env['KAFKA_BOOTSTRAP_SERVERS']}" in kafka_env[
            "KAFKA_ADVERTISED_LISTENERS"
        ].split(",")
        user = postgres_env["POSTGRES_USER"]
        password = postgres_env["POSTGRES_PASSWORD"]
        database = postgres_env["POSTGRES_DB"]
        expected_url = f"postgresql://{user}:{password}@postgres:5432/{database}"
        assert env["DATABASE_URL"] == expected_url
        assert found[f"{name}-migrate"]["environment"]["DATABASE_URL"] == expected_url
        assert found[f"{name}-migrate"]["environment"]["HUDDLE_ENVIRONMENT"] == "local"
        (mount,) = service["volumes"]
        # Only the public keys of the issuer `huddle token` signs with, never its private key.
        assert mount["type"] == "bind"
        assert mount["source"] == "./.huddle/issuer/jwks.json"
        assert mount["read_only"] is True
        assert mount["bind"]["create_host_path"] is False
        assert env["HUDDLE_AUTH_JWKS_FILE"] == mount["target"]
        probe = " ".join(service["healthcheck"]["test"])
        assert f"127.0.0.1:{default_port(name)}/readyz" in probe


def seconds(duration: str) -> float:
    """A Compose duration (``1m30s``, ``95s``, ``500ms``) in seconds."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(n) * units[u] for n, u in parts)


def test_healthchecks_wait_for_the_slowest_readyz() -> None:
    # /readyz checks the database, then the producer's metadata, up to 2 s each
    # (huddle_runtime.health.check): the probe's own timeout, then Compose's, must outlast that.
    for name in SERVICES:
        check = services()[name]["healthcheck"]
        probe = " ".join(check["test"])
        match = re.search(r"urlopen\([^)]*timeout=(\d+(?:\.\d+)?)\)", probe)
        assert match, probe
        inner = float(match.group(1))
        assert inner >= 5, f"{name}: the probe gives /readyz {inner}s"
        assert seconds(check["timeout"]) > inner, f"{name}: Compose stops the probe first"


def test_stop_grace_outlasts_the_whole_shutdown_chain(
    shutdown_chain: Callable[[str, float | None], float],
) -> None:
    for name in SERVICES:
        service = services()[name]
        grace = service["environment"].get("HUDDLE_DELIVERY_SHUTDOWN_GRACE_SECONDS")
        needed = shutdown_chain(name, float(grace) if grace else None)
        period = seconds(service["stop_grace_period"])
        assert period >= needed, f"{name}: {period}s for a shutdown of up to {needed}s"


def test_the_observability_profile_sends_traces_to_jaeger_through_a_collector() -> None:
    found = services()
    profiled = {n for n, s in found.items() if s.get("profiles")}
    assert profiled == {"otel-collector", "jaeger"}
    for name in profiled:
        assert found[name]["profiles"] == ["observability"]
    for name in SERVICES:
        raw_value = raw_compose()["services"][name]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"]
        assert re.fullmatch(r"\$\{HUDDLE_OTLP_ENDPOINT:-\}", raw_value), (
            "no export unless asked for (the collector runs only with the profile)"
        )
        endpoint = interpolate(raw_value, {"HUDDLE_OTLP_ENDPOINT": "http://otel-collector:4318"})
        assert endpoint == "http://otel-collector:4318"
    collector = found["otel-collector"]
    (mount,) = collector["volumes"]
    source, target, mode = mount.split(":")
    assert mode == "ro" and f"--config={target}" in collector["command"]
    config = yaml.safe_load((ROOT / source).read_text())
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")
    pipeline = config["service"]["pipelines"]["traces"]
    assert pipeline["receivers"] == ["otlp"]
    (exporter,) = pipeline["exporters"]
    assert config["exporters"][exporter]["endpoint"] == "jaeger:4317"
    assert "jaeger" in depends_on(collector)


def test_nothing_runs_privileged_and_huddle_containers_are_locked_down() -> None:
    for name, service in services().items():
        assert not service.get("privileged"), name
        assert not service.get("cap_add"), name
        assert service.get("network_mode") != "host", name
        assert service.get("pid") != "host", name
        assert service.get("ipc") != "host", name
        assert "/var/run/docker.sock" not in json.dumps(service.get("volumes", [])), name
        if str(service.get("image", "")).startswith("huddle/"):
            assert service["read_only"] is True, name
            assert service["tmpfs"] == ["/tmp"], name
            assert service["cap_drop"] == ["ALL"], name
            assert "no-new-privileges:true" in service["security_opt"], name
            uid = str(service.get("user", "10001")).split(":")[0]
            assert uid.isdigit() and int(uid) > 0, name


def test_published_ports_listen_on_loopback_only() -> None:
    published: dict[str, list[str]] = {}
    for name, service in services().items():
        for port in service.get("ports", []):
            if isinstance(port, dict):
                assert port.get("host_ip") == "127.0.0.1", f"{name}: {port}"
                published.setdefault(name, []).append(f"{port['published']}:{port['target']}")
                continue
            assert str(port).startswith("127.0.0.1:"), f"{name}: {port} is open to the network"
            published.setdefault(name, []).append(str(port).removeprefix("127.0.0.1:"))
    for name in SERVICES:
        port = default_port(name)
        assert published[name] == [f"{port}:{port}"]
    assert set(published) == {*SERVICES, "kafka", "jaeger"}, "PostgreSQL stays inside"
