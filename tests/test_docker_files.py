"""Static checks of Dockerfile, .dockerignore and docker-compose.yml.

No container engine runs in the test environment, so these tests read the
files and compare them with the repository: the paths they copy, the extras
they install, the command they run and the port and health check they use.
"""

import fnmatch
import json
import posixpath
import re
import shlex
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from packaging.specifiers import SpecifierSet

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
PYPROJECT = REPO_ROOT / "pyproject.toml"

ONNX_RUNTIME_PACKAGES = {"onnxruntime", "onnxruntime-gpu"}
SERVICE_EXTRAS = {"serve": "onnxruntime", "gpu": "onnxruntime-gpu"}
# Everything `pip install .` and the running service need inside the image.
REQUIRED_COPIES = {"pyproject.toml", "README.md", "ganforge", "service", "evaluation", "training", "frontend", "models"}


# ---- Dockerfile parsing ---------------------------------------------------------


@dataclass
class Instruction:
    keyword: str
    arguments: str
    line: int


def read_instructions(path: Path = DOCKERFILE) -> list[Instruction]:
    """Split a Dockerfile into instructions, joining lines continued with a backslash.

    Comment lines are dropped, also inside a continued instruction, as Docker does.
    """
    instructions = []
    pending: list[str] = []
    start_line = 0
    for number, raw_line in enumerate(path.read_text().splitlines(), start=1):
        stripped = raw_line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not pending:
            start_line = number
        continued = stripped.endswith("\\")
        pending.append(stripped[:-1].strip() if continued else stripped)
        if continued:
            continue
        keyword, _, arguments = " ".join(pending).partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip(), start_line))
        pending = []

    assert not pending, f"{path.name} ends inside an instruction continued with a backslash"
    return instructions


def instructions_named(keyword: str) -> list[Instruction]:
    return [instruction for instruction in read_instructions() if instruction.keyword == keyword]


def only_instruction(keyword: str) -> Instruction:
    found = instructions_named(keyword)
    assert len(found) == 1, f"expected one {keyword} instruction in the Dockerfile, found {len(found)}"
    return found[0]


def exec_form(instruction: Instruction) -> list[str]:
    """Parse the JSON array of an exec-form CMD or HEALTHCHECK CMD."""
    text = instruction.arguments
    if instruction.keyword == "HEALTHCHECK":
        text = text[text.index(" CMD ") + len(" CMD ") :] if " CMD " in text else ""
    assert text.startswith("["), f"line {instruction.line}: expected the exec form [...], got {text!r}"
    argv = json.loads(text)
    assert all(isinstance(item, str) for item in argv)
    return argv


def copy_sources_and_destination(instruction: Instruction) -> tuple[list[str], str]:
    words = [word for word in shlex.split(instruction.arguments) if not word.startswith("--")]
    assert len(words) >= 2, f"line {instruction.line}: COPY needs a source and a destination"
    return words[:-1], words[-1]


def workdir() -> str:
    return only_instruction("WORKDIR").arguments


def copy_destinations() -> dict[str, str]:
    """Map each copied repository path, without a trailing slash, to its absolute path in the image.

    COPY puts a folder's contents at the destination itself, and a file into a
    destination that ends with a slash under the file's own name.
    """
    destinations = {}
    for instruction in instructions_named("COPY"):
        sources, destination = copy_sources_and_destination(instruction)
        absolute = posixpath.join(workdir(), destination)
        for source in sources:
            name = source.rstrip("/")
            if destination.endswith("/") and not (REPO_ROOT / name).is_dir():
                target = posixpath.join(absolute, posixpath.basename(name))
            else:
                target = absolute
            destinations[name] = posixpath.normpath(target)
    return destinations


def environment() -> dict[str, str]:
    values = {}
    for instruction in instructions_named("ENV"):
        for word in shlex.split(instruction.arguments):
            name, separator, value = word.partition("=")
            assert separator, f"line {instruction.line}: write ENV as NAME=value, got {word!r}"
            values[name] = value
    return values


def build_args() -> dict[str, str | None]:
    values = {}
    for instruction in instructions_named("ARG"):
        name, separator, value = instruction.arguments.partition("=")
        values[name] = value if separator else None
    return values


def exposed_port() -> int:
    return int(only_instruction("EXPOSE").arguments.split("/")[0])


# ---- .dockerignore and pyproject ------------------------------------------------


def read_dockerignore() -> list[tuple[bool, str]]:
    """Return (is_exception, pattern) per .dockerignore rule, in file order."""
    rules = []
    for raw_line in DOCKERIGNORE.read_text().splitlines():
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        pattern = line.lstrip("!").strip().strip("/")
        rules.append((exception, pattern))
    return rules


def _pattern_matches(pattern: str, path: str) -> bool:
    # A rule that matches a folder excludes everything below it, so every
    # leading part of the path is tried. "**/" also matches no folder at all.
    # NOTE: fnmatch lets "*" match "/", so a pattern here can match a deeper
    # path than Docker's matcher would. That only makes the checks stricter.
    patterns = [pattern, pattern[3:]] if pattern.startswith("**/") else [pattern]
    parts = path.strip("/").split("/")
    for end in range(1, len(parts) + 1):
        prefix = "/".join(parts[:end])
        if any(fnmatch.fnmatchcase(prefix, candidate) for candidate in patterns):
            return True
    return False


def is_dockerignored(path: str, rules: list[tuple[bool, str]]) -> bool:
    """Apply .dockerignore rules as Docker does: the last matching rule decides."""
    ignored = False
    for exception, pattern in rules:
        if _pattern_matches(pattern, path):
            ignored = not exception
    return ignored


def committable_files(relative: str) -> list[str]:
    """List the files below a repository path that git tracks or would add, as repository paths."""
    if not (REPO_ROOT / ".git").exists():
        pytest.skip(f"{REPO_ROOT} is not a git checkout, so the committable files are unknown")
    completed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", relative],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        pytest.fail(f"git ls-files failed in {REPO_ROOT}: {completed.stderr.strip()}")
    return completed.stdout.splitlines()


def read_pyproject() -> dict:
    return tomllib.loads(PYPROJECT.read_text())


def requirement_name(requirement: str) -> str:
    name = re.match(r"[A-Za-z0-9._-]+", requirement.strip()).group(0)
    return re.sub(r"[-_.]+", "-", name).lower()


def pip_install_targets(extra: str) -> list[str]:
    """Return the targets of every `pip install` in the RUN instructions, with EXTRA set to extra."""
    targets = []
    for instruction in instructions_named("RUN"):
        script = instruction.arguments.replace("${EXTRA}", extra).replace("$EXTRA", extra)
        for match in re.finditer(r"pip3? install\s+([^&;|]+)", script):
            words = shlex.split(match.group(1))
            targets.extend(word for word in words if not word.startswith("-"))
    return targets


def installed_requirements(extra: str) -> list[str]:
    """Resolve the pip install targets for one EXTRA value to requirement names, one level deep."""
    optional = read_pyproject()["project"]["optional-dependencies"]
    names = []
    for target in pip_install_targets(extra):
        match = re.fullmatch(r"\.\[([^\]]+)\]", target)
        if target == ".":
            continue
        if match is None:
            names.append(requirement_name(target))
            continue
        for extra_name in match.group(1).split(","):
            assert extra_name.strip() in optional, f"pyproject.toml has no extra {extra_name.strip()!r}"
            names.extend(requirement_name(item) for item in optional[extra_name.strip()])
    return names


# ---- docker-compose.yml parsing -------------------------------------------------


def load_compose() -> dict:
    """Parse docker-compose.yml, which must be a YAML mapping."""
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(document, dict), "docker-compose.yml is not a YAML mapping"
    return document


def compose_service() -> dict:
    return load_compose()["services"]["ganforge"]


def health_check_url(argv: list[str]) -> str:
    """Return the URL that a `python -c` health check command requests, after checking its code compiles."""
    assert argv[:2] == ["python", "-c"], f"expected a 'python -c' health check, got {argv}"
    code = argv[2]
    compile(code, "<health check>", "exec")
    assert "urllib.request" in code, f"the health check should use urllib.request, got {code!r}"
    match = re.search(r"""['"](http://[^'"]+)['"]""", code)
    assert match is not None, f"no http:// URL in the health check code {code!r}"
    return match.group(1)


# ---- Dockerfile tests -----------------------------------------------------------


def test_dockerfile_base_image_matches_python():
    image = only_instruction("FROM").arguments
    assert image == "python:3.11-slim"

    version = re.match(r"python:(\d+\.\d+)", image).group(1)
    requires_python = SpecifierSet(read_pyproject()["project"]["requires-python"])
    assert version in requires_python, f"{image} is outside requires-python {requires_python}"


def test_dockerfile_copy_sources_exist():
    rules = read_dockerignore()
    copies = instructions_named("COPY")
    assert copies, "the Dockerfile copies nothing"

    for instruction in copies:
        assert "--from" not in instruction.arguments, f"line {instruction.line}: unexpected multi-stage COPY"
        sources, _ = copy_sources_and_destination(instruction)
        for source in sources:
            path = REPO_ROOT / source
            assert path.exists(), f"line {instruction.line}: COPY source {source} does not exist"
            assert not is_dockerignored(source, rules), f"line {instruction.line}: .dockerignore excludes {source}"


def test_dockerfile_copy_sources_committable():
    # A folder without committable files is missing from a fresh clone, and
    # COPY of a missing source fails the build.
    rules = read_dockerignore()
    for instruction in instructions_named("COPY"):
        sources, _ = copy_sources_and_destination(instruction)
        for source in sources:
            files = [name for name in committable_files(source) if not is_dockerignored(name, rules)]
            assert files, (
                f"line {instruction.line}: {source} holds no file that git would commit and "
                f"Docker would send, so a fresh clone cannot build the image"
            )


def test_dockerfile_copies_required_paths():
    copied = set(copy_destinations())
    missing = REQUIRED_COPIES - copied
    assert not missing, f"the Dockerfile does not copy {sorted(missing)}"
    assert "tests" not in copied


def test_dockerfile_installs_one_onnxruntime_per_extra():
    args = build_args()
    assert args.get("EXTRA") == "serve", "ARG EXTRA should default to the CPU extra 'serve'"

    for extra, expected in SERVICE_EXTRAS.items():
        names = installed_requirements(extra)
        runtimes = [name for name in names if name in ONNX_RUNTIME_PACKAGES]
        assert runtimes == [expected], f"EXTRA={extra} installs {runtimes}, expected only {expected}"
        assert "tensorflow" not in names, f"EXTRA={extra} installs the train extra's TensorFlow"


def test_dockerfile_install_uses_extra_argument():
    targets = pip_install_targets("EXTRA_VALUE")
    assert targets == [".[EXTRA_VALUE]"], f"expected one pip install of '.[$EXTRA]', got {targets}"


def test_dockerfile_environment_points_at_copies():
    values = environment()
    destinations = copy_destinations()
    assert values.get("GANFORGE_MODELS_DIR") == "/app/models"
    assert values.get("GANFORGE_FRONTEND_DIR") == "/app/frontend"
    assert destinations["models"] == values["GANFORGE_MODELS_DIR"]
    assert destinations["frontend"] == values["GANFORGE_FRONTEND_DIR"]


def test_service_reads_dockerfile_environment(monkeypatch):
    settings_module = pytest.importorskip("service.settings", reason="service.settings needs the 'serve' extra")
    values = environment()
    for name in ("GANFORGE_MODELS_DIR", "GANFORGE_FRONTEND_DIR"):
        monkeypatch.setenv(name, values[name])
    monkeypatch.delenv("PORT", raising=False)
    monkeypatch.delenv("GANFORGE_PROVIDERS", raising=False)

    settings = settings_module.Settings.from_env()

    assert settings.models_dir == Path(values["GANFORGE_MODELS_DIR"])
    assert settings.frontend_dir == Path(values["GANFORGE_FRONTEND_DIR"])


def test_dockerfile_cmd_runs_ganforge_serve():
    argv = exec_form(only_instruction("CMD"))
    assert argv[:2] == ["ganforge", "serve"]

    scripts = read_pyproject()["project"]["scripts"]
    assert scripts.get("ganforge") == "ganforge.cli:main"

    from ganforge.cli import build_parser

    arguments = build_parser().parse_args(argv[1:])
    assert arguments.command == "serve"
    assert arguments.host == "0.0.0.0"
    assert arguments.port == exposed_port()


def test_dockerfile_exposes_8000():
    assert exposed_port() == 8000


def test_dockerfile_healthcheck_requests_health():
    url = urlsplit(health_check_url(exec_form(only_instruction("HEALTHCHECK"))))
    assert url.hostname == "127.0.0.1"
    assert url.port == exposed_port()
    assert url.path == "/health"


def test_service_defines_health_route():
    sources = [path.read_text() for path in sorted((REPO_ROOT / "service").glob("*.py"))]
    assert any(re.search(r"""\.get\(\s*["']/health["']""", text) for text in sources), (
        "no service/*.py module registers GET /health, which the health checks request"
    )


def test_dockerfile_runs_as_non_root():
    instructions = read_instructions()
    users = [index for index, instruction in enumerate(instructions) if instruction.keyword == "USER"]
    assert users, "the Dockerfile has no USER instruction, so the service runs as root"

    user = instructions[users[-1]].arguments
    assert user.split(":")[0] not in ("root", "0")
    runs = [index for index, instruction in enumerate(instructions) if instruction.keyword == "RUN"]
    assert max(runs) < users[-1], "a RUN instruction after USER would need root"
    runs_useradd = [instruction.arguments for instruction in instructions_named("RUN")]
    assert any(re.search(rf"useradd\b.*\b{user}$", script) for script in runs_useradd), (
        f"no RUN useradd creates the user {user!r}"
    )


# ---- .dockerignore tests --------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".git/HEAD",
        "runs/fashion/generator.h5",
        "tests/test_docker_files.py",
        "ganforge/__pycache__/cli.cpython-311.pyc",
        ".pytest_cache/v/cache/nodeids",
        "ganforge.egg-info/PKG-INFO",
    ],
)
def test_dockerignore_excludes(path):
    assert is_dockerignored(path, read_dockerignore())


def test_dockerignore_keeps_package_sources():
    rules = read_dockerignore()
    for path in ("ganforge/cli.py", "service/settings.py", "frontend/index.html", "pyproject.toml", "README.md"):
        assert not is_dockerignored(path, rules), f".dockerignore excludes {path}"


# ---- docker-compose.yml tests ---------------------------------------------------


def test_compose_has_one_service():
    assert set(load_compose()["services"]) == {"ganforge"}


def test_compose_builds_repository():
    build = compose_service()["build"]
    context = build if isinstance(build, str) else build["context"]
    assert context == "."
    if isinstance(build, dict):
        extra = build.get("args", {}).get("EXTRA", "serve")
        assert extra in SERVICE_EXTRAS


def test_compose_publishes_port_on_loopback():
    ports = compose_service()["ports"]
    assert ports == ["127.0.0.1:${PORT:-8000}:8000"]

    match = re.fullmatch(r"([\d.]+):\$\{PORT:-(\d+)\}:(\d+)", ports[0])
    host_address, host_port, container_port = match.groups()
    assert host_address == "127.0.0.1"
    assert int(host_port) == 8000
    assert int(container_port) == exposed_port()


def test_compose_mounts_models_read_only():
    volumes = compose_service()["volumes"]
    source, target, mode = volumes[0].split(":")
    assert (REPO_ROOT / source).is_dir(), f"the mounted folder {source} does not exist"
    assert target == environment()["GANFORGE_MODELS_DIR"]
    assert mode == "ro"


def test_compose_healthcheck_requests_health():
    healthcheck = compose_service()["healthcheck"]
    test = healthcheck["test"]
    assert test[0] == "CMD"

    url = urlsplit(health_check_url(test[1:]))
    assert url.port == exposed_port()
    assert url.path == "/health"
    for key in ("interval", "timeout", "retries"):
        assert key in healthcheck, f"healthcheck has no {key}"


def test_compose_restarts_unless_stopped():
    assert compose_service()["restart"] == "unless-stopped"
