"""deploy/ stays true to the code: its YAML parses; kustomize holds together (and builds, where kustomize or
kubectl is installed); every ``parityprobe`` command line in a manifest, the CronJob, the systemd unit, the
CI examples, the Dockerfile and the deploy README names a real command and only that command's options; the
image is pinned, non-root and secret-free (and builds, where a container engine answers); the pods are
locked down, probed on the port the daemon listens on, and may only reach their targets; the example
environments file loads with the real loader.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from parityprobe.cli import main
from parityprobe.config.load import LoadedEnvironments, load_environments, load_scenarios, parse_environments
from parityprobe.config.plan import build_plan
from parityprobe.model import Effect
from parityprobe.redact import Redactor
from parityprobe.registry import ProbeRegistry

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "kubernetes"
BASE = K8S / "base"
OVERLAYS = sorted(p for p in (K8S / "overlays").iterdir() if (p / "kustomization.yaml").exists())
EXAMPLE = DEPLOY / "environments.example.yaml"
UNIT = DEPLOY / "systemd" / "parityprobe-daemon.service"
YAML_FILES = sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yaml", ".yml"))
LISTEN_PORT = 9464
SECRET_WORD = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|PRIVATE|CREDENTIAL|API_?KEY", re.IGNORECASE)


def rel(path: Path) -> str:
    return str(path.relative_to(REPO))


def documents(path: Path) -> list[Any]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


# ---------------------------------------------------------------------------------------------------------
# Every parityprobe command line in deploy/, found where it is written


@dataclass(frozen=True)
class CommandLine:
    """The arguments after ``parityprobe`` and where they were written."""

    where: str
    argv: tuple[str, ...]


_OPERATORS = {";", "&&", "||", "|", "&", "(", ")", ";;", "!", "{", "}"}
_KEYWORDS = {"then", "do", "else", "elif", "exec", "time", "if", "while", "until"}


def is_parityprobe(word: str) -> bool:
    return word.rsplit("/", 1)[-1] == "parityprobe"


def shell_commands(text: str, where: str) -> list[CommandLine]:
    """``parityprobe`` invocations in shell text: continuation lines joined, comments dropped, each simple
    command split at ``;``, ``&&``, ``||``, ``|`` and redirections; only words in command position count
    (``pip install parityprobe`` is not a call)."""
    found: list[CommandLine] = []
    lines = text.replace("\\\n", " ").splitlines()
    pending, start = "", 0
    for number, line in enumerate(lines, 1):
        pending, start = (pending + "\n" + line, start) if pending else (line, number)
        lexer = shlex.shlex(pending, posix=True, punctuation_chars=";&|()<>")
        lexer.whitespace_split = True
        try:
            tokens = list(lexer)
        except ValueError:  # a quotation open across lines: read on
            continue
        pending = ""
        at_command = True
        for index, token in enumerate(tokens):
            if at_command and is_parityprobe(token):
                argv = []
                for word in tokens[index + 1 :]:
                    if word in _OPERATORS or set(word) <= set("<>&|;"):
                        break
                    argv.append(word)
                found.append(CommandLine(f"{where}:{start}", tuple(argv)))
            if token in _OPERATORS or set(token) <= set("<>&|;()"):
                at_command = True
            elif token not in _KEYWORDS and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", token):
                at_command = False
    return found


def walk(node: Any) -> Iterator[Any]:
    yield node
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
    for child in children:
        yield from walk(child)


def container_commands(path: Path) -> list[CommandLine]:
    """The argv of every container (``command`` + ``args``; without ``command``, the image's entrypoint
    ``parityprobe``), and of every JSON patch that replaces one's ``args``."""
    found = []
    for doc in documents(path):
        for node in walk(doc):
            if not isinstance(node, dict):
                continue
            for container in node.get("containers", []) + node.get("initContainers", []):
                command, args = container.get("command"), container.get("args", [])
                where = f"{rel(path)}:{doc.get('kind')}/{container.get('name')}"
                if command and is_parityprobe(command[0]):
                    found.append(CommandLine(where, tuple(command[1:] + args)))
                elif command and command[0].endswith("sh") and "-c" in command:
                    found += shell_commands(" ".join(args or command[command.index("-c") + 1 :]), where)
                elif not command and args:
                    found.append(CommandLine(where, tuple(args)))
            if node.get("op") in ("add", "replace") and str(node.get("path", "")).endswith("/args"):
                found.append(CommandLine(f"{rel(path)}:{node['path']}", tuple(node["value"])))
    return found


def ci_commands(path: Path) -> list[CommandLine]:
    """GitHub Actions ``run:`` and GitLab ``script:`` (and before/after) lines."""
    found = []
    for doc in documents(path):
        for node in walk(doc):
            if not isinstance(node, dict):
                continue
            for key in ("run", "script", "before_script", "after_script"):
                value = node.get(key)
                for text in value if isinstance(value, list) else [value]:
                    if isinstance(text, str):
                        found += shell_commands(text, f"{rel(path)}:{key}")
    return found


def unit_commands(path: Path) -> list[CommandLine]:
    """systemd ``Exec*=`` lines: continuations joined, the ``-@:+!`` prefixes dropped."""
    found = []
    for line in path.read_text().replace("\\\n", " ").splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip().startswith("Exec"):
            argv = shlex.split(value.strip().lstrip("-@:+!"))
            if argv and is_parityprobe(argv[0]):
                found.append(CommandLine(f"{rel(path)}:{key.strip()}", tuple(argv[1:])))
    return found


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuations joined and comment lines dropped, as Docker reads it."""
    instructions: list[tuple[str, str]] = []
    current = ""
    for line in path.read_text().splitlines():
        if line.strip().startswith("#"):
            continue
        current += line.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        if current.strip():
            keyword, _, rest = current.strip().partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
        current = ""
    return instructions


def dockerfile_commands(path: Path) -> list[CommandLine]:
    """``RUN`` lines, and ``CMD`` under the ``parityprobe`` entrypoint."""
    found: list[CommandLine] = []
    entrypoint: list[str] = []
    cmd: list[str] = []
    for keyword, rest in dockerfile_instructions(path):
        if keyword == "RUN":
            found += shell_commands(rest, f"{rel(path)}:RUN")
        elif keyword == "ENTRYPOINT":
            entrypoint = json.loads(rest)
        elif keyword == "CMD":
            cmd = json.loads(rest)
    if entrypoint and is_parityprobe(entrypoint[0]):
        found.append(CommandLine(f"{rel(path)}:ENTRYPOINT+CMD", tuple(entrypoint[1:] + cmd)))
    return found


def readme_commands(path: Path) -> list[CommandLine]:
    """Shell code blocks (sh, bash, shell, console; ``$`` prompts dropped)."""
    found = []
    blocks = re.finditer(r"```(?:sh|bash|shell|console)\n(.*?)```", path.read_text(), re.DOTALL)
    for block in blocks:
        text = re.sub(r"(?m)^\$ ", "", block.group(1))
        found += shell_commands(text, f"{rel(path)}:block@{block.start()}")
    return found


@cache
def all_command_lines() -> tuple[CommandLine, ...]:
    found: list[CommandLine] = []
    for path in YAML_FILES:
        found += container_commands(path)
    for path in sorted((DEPLOY / "ci").glob("*")):
        found += (
            ci_commands(path)
            if path.suffix in (".yaml", ".yml")
            else shell_commands(path.read_text(), rel(path))
        )
    found += unit_commands(UNIT)
    found += dockerfile_commands(DEPLOY / "Dockerfile")
    found += readme_commands(DEPLOY / "README.md")
    return tuple(found)


# ---------------------------------------------------------------------------------------------------------
# Checking one command line against the real click command tree


def _takes_value(param: click.Parameter) -> bool:
    return isinstance(param, click.Option) and not param.is_flag and not param.count


def cli_problems(argv: tuple[str, ...]) -> list[str]:
    """What the real ``parityprobe`` command tree says is wrong with these arguments (empty: nothing): the
    subcommand exists; each option is one of that command's (``Command.params``), has its value, and that
    value converts (a choice, a number, a format, unless it is a ``$VARIABLE``); required options and
    arguments are there."""
    command: click.Command = main
    ctx = click.Context(main, info_name="parityprobe")
    words = list(argv)
    while True:
        problems, positionals, given = _parse(command, ctx, words)
        if problems or given & {"--help", "-h", "--version"}:
            return problems
        if not isinstance(command, click.Group):
            break
        if not positionals:
            return [f"{ctx.command_path}: no subcommand"]
        name = positionals[0]
        sub = command.get_command(ctx, name)
        if sub is None:
            return [
                f"{ctx.command_path}: no command {name!r} (have: {', '.join(command.list_commands(ctx))})"
            ]
        words = words[words.index(name) + 1 :]
        command, ctx = sub, click.Context(sub, info_name=name, parent=ctx)
    problems = []
    for param in command.get_params(ctx):
        required = isinstance(param, click.Option) and param.required and not param.envvar
        if required and not given & set(param.opts + param.secondary_opts):
            problems.append(f"{ctx.command_path}: {max(param.opts, key=len)} is required")
    arguments = [p for p in command.params if isinstance(p, click.Argument)]
    if positionals and not arguments:
        problems.append(f"{ctx.command_path}: takes no arguments, got {positionals}")
    if not positionals and any(a.required for a in arguments):
        problems.append(f"{ctx.command_path}: {arguments[0].human_readable_name} is required")
    return problems


def _parse(
    command: click.Command, ctx: click.Context, words: list[str]
) -> tuple[list[str], list[str], set[str]]:
    """(problems, positional words, option names given) for ``command``'s own options; for a group, up to
    its subcommand's name."""
    options: dict[str, click.Parameter] = {}
    for param in command.get_params(ctx):
        for opt in getattr(param, "opts", []) + getattr(param, "secondary_opts", []):
            if opt.startswith("-"):
                options[opt] = param
    problems: list[str] = []
    positionals: list[str] = []
    given: set[str] = set()
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if word == "--" or (isinstance(command, click.Group) and positionals):
            positionals += words[index - 1 :] if word != "--" else words[index:]
            break
        if not word.startswith("-") or word == "-":
            positionals.append(word)
            continue
        name, _, value = word.partition("=") if word.startswith("--") else (word[:2], "", word[2:])
        param = options.get(name)
        if param is None:
            problems.append(f"{ctx.command_path}: no option {name} (have: {', '.join(sorted(options))})")
            continue
        given.update(getattr(param, "opts", []))
        if not _takes_value(param):
            if value:
                problems.append(f"{ctx.command_path}: {name} is a flag and takes no value")
            continue
        if not value:
            if index >= len(words):
                problems.append(f"{ctx.command_path}: {name} needs a value")
                continue
            value, index = words[index], index + 1
        problems += _value_problems(param, ctx, name, value)
    return problems, positionals, given


def _value_problems(param: click.Parameter, ctx: click.Context, name: str, value: str) -> list[str]:
    if "$" in value or isinstance(param.type, click.Path):  # set at run time; paths exist only there
        return []
    try:
        converted = param.type.convert(value, param, ctx)
        if param.callback is not None and not param.is_eager:
            param.callback(ctx, param, converted)
    except click.UsageError as exc:
        return [f"{ctx.command_path}: {name} {value!r}: {exc.format_message()}"]
    return []


def test_the_checker_refuses_what_the_cli_would() -> None:
    # The checker must be able to fail, or every command line below would pass whatever it says.
    assert cli_problems(("compare", "--since", "24h", "--format", "json", "-o", "parity.json")) == []
    assert cli_problems(("--verbose", "validate", "-e", "envs.yaml", "scenarios/")) == []
    assert cli_problems(("lab", "status")) == []
    assert cli_problems(("compare", "--help")) == []
    assert cli_problems(("compare", "--store=$PARITYPROBE_STORE_URL")) == []
    wrong = {
        ("comapre", "--since", "24h"): "no command 'comapre'",
        ("compare", "--dry-run"): "no option --dry-run",
        ("compare", "--format", "docx"): "--format 'docx'",
        ("compare", "--since"): "--since needs a value",
        ("run", "scenarios/"): "--environments is required",
        ("run", "-e", "envs.yaml"): "PATHS is required",
        ("run", "--quiet=yes", "-e", "e.yaml", "s/"): "--quiet is a flag",
        ("run", "-e", "e.yaml", "--concurrency", "0", "s/"): "--concurrency '0'",
        ("probes", "extra"): "takes no arguments",
        ("lab",): "no subcommand",
    }
    for argv, expected in wrong.items():
        problems = cli_problems(argv)
        assert any(expected in p for p in problems), (argv, problems)


def test_command_lines_are_found_in_every_kind_of_file() -> None:
    lines = all_command_lines()
    kinds = {
        "Deployment": "Deployment/parityprobe",
        "CronJob": "CronJob/parityprobe",
        "systemd": "parityprobe-daemon.service:ExecStart",
        "GitHub Actions": "github-actions.yaml:run",
        "GitLab CI": "gitlab-ci.yml:script",
        "gate script": "release-gate.sh",
        "Dockerfile CMD": "Dockerfile:ENTRYPOINT+CMD",
        "Dockerfile RUN": "Dockerfile:RUN",
        "README": "README.md:block",
    }
    missing = [kind for kind, marker in kinds.items() if not any(marker in line.where for line in lines)]
    assert not missing, f"no parityprobe command line found in: {missing}"
    assert not [line for line in lines if "pip" in line.argv], "pip install parityprobe is not a call"


@pytest.mark.parametrize("line", all_command_lines(), ids=lambda line: f"{line.where}:{' '.join(line.argv)}")
def test_command_line_matches_the_cli(line: CommandLine) -> None:
    assert cli_problems(line.argv) == [], line.where


# ---------------------------------------------------------------------------------------------------------
# YAML and kustomize structure


@pytest.mark.parametrize("path", YAML_FILES, ids=rel)
def test_yaml_parses(path: Path) -> None:
    assert documents(path), f"{rel(path)} holds no YAML document"


def kustomizations() -> list[Path]:
    return sorted(K8S.rglob("kustomization.yaml"))


def _listed_files(kustomization: dict[str, Any]) -> Iterator[str]:
    yield from kustomization.get("resources", []) + kustomization.get("components", [])
    for patch in kustomization.get("patches", []):
        if "path" in patch:
            yield patch["path"]
    yield from kustomization.get("patchesStrategicMerge", [])
    for generator in kustomization.get("configMapGenerator", []) + kustomization.get("secretGenerator", []):
        for source in generator.get("files", []):
            yield source.partition("=")[2] or source
        yield from generator.get("envs", [])


@pytest.mark.parametrize("path", kustomizations(), ids=rel)
def test_kustomization_lists_only_files_that_exist(path: Path) -> None:
    (kustomization,) = documents(path)
    for entry in _listed_files(kustomization):
        target = path.parent / entry
        assert target.is_file() or (target / "kustomization.yaml").is_file(), f"{rel(path)}: {entry} missing"
    for component in kustomization.get("components", []):
        (doc,) = documents(path.parent / component / "kustomization.yaml")
        assert doc["kind"] == "Component", f"{component} is not a kustomize Component"


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_overlay_builds_on_the_base_in_its_own_namespace(overlay: Path) -> None:
    (kustomization,) = documents(overlay / "kustomization.yaml")
    assert any((overlay / r).resolve() == BASE for r in kustomization["resources"]), "overlay skips the base"
    assert kustomization.get("namespace", "").endswith(overlay.name)


def test_base_copies_are_identical_to_their_originals() -> None:
    # kustomize reads only files below the kustomization: the base carries copies, which must not drift.
    assert (BASE / "environments.yaml").read_text() == EXAMPLE.read_text(), (
        "copy deploy/environments.example.yaml to deploy/kubernetes/base/environments.yaml"
    )
    copies = sorted((BASE / "scenarios").glob("*.yaml"))
    assert copies
    for copy in copies:
        assert copy.read_text() == (REPO / "scenarios" / copy.name).read_text(), f"{copy.name} differs"


def test_base_scenarios_plan_against_the_example_and_only_read() -> None:
    parsed, locator = parse_environments(EXAMPLE)
    envs = LoadedEnvironments(locator.file, locator, list(parsed.environments.values()))
    plan = build_plan(envs, load_scenarios([BASE / "scenarios"]), ProbeRegistry())
    assert len(plan.scenarios) == len(list((BASE / "scenarios").glob("*.yaml")))
    # A daemon probes production on a schedule: the sample changes nothing anywhere.
    effects = {(s.id, p.step.id): p.effect for s in plan.scenarios for p in s.steps + s.cleanup}
    assert set(effects.values()) == {Effect.READ}, effects


def kustomize_command() -> list[str] | None:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


@cache
def rendered(overlay: Path) -> tuple[dict[str, Any], ...]:
    command = kustomize_command()
    if command is None:
        pytest.skip("neither kustomize nor kubectl is installed: the overlays are checked unbuilt only")
    result = subprocess.run([*command, str(overlay)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return tuple(d for d in yaml.safe_load_all(result.stdout) if d)


def of_kind(docs: Iterator[dict[str, Any]] | tuple[dict[str, Any], ...], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d.get("kind") == kind]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return dict(spec["template"]["spec"])


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_overlay_renders_a_daemon_and_a_prerelease_cronjob(overlay: Path) -> None:
    docs = rendered(overlay)
    (deployment,) = of_kind(docs, "Deployment")
    (cronjob,) = of_kind(docs, "CronJob")
    namespaced = [d for d in docs if d["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding")]
    assert {d["metadata"].get("namespace") for d in namespaced} == {f"parityprobe-{overlay.name}"}
    daemon_args = pod_spec(deployment)["containers"][0]["args"]
    once_args = pod_spec(cronjob)["containers"][0]["args"]
    assert daemon_args[0] == "daemon" and "--once" not in daemon_args
    assert once_args[0] == "daemon" and "--once" in once_args
    for argv in (daemon_args, once_args):
        assert cli_problems(tuple(argv)) == []
    for workload in (deployment, cronjob):
        for container in pod_spec(workload)["containers"]:
            name, _, tag = container["image"].rpartition(":")
            assert name and "/" not in tag and tag != "latest", f"image not pinned: {container['image']}"
    (account,) = of_kind(docs, "ServiceAccount")
    role = account["metadata"].get("annotations", {}).get("eks.amazonaws.com/role-arn", "")
    assert re.fullmatch(r"arn:aws:iam::\d{12}:role/[\w+=,.@/-]+", role), "IRSA role annotation"
    assert pod_spec(deployment)["serviceAccountName"] == account["metadata"]["name"]
    assert not of_kind(docs, "Secret"), "secrets are referenced, never rendered from git"


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_overlay_daemon_has_every_secret_its_environment_reads(overlay: Path) -> None:
    # The environment named in the overlay's settings must exist in the shipped environments file, and
    # each secret reference of that environment must be satisfied by the pod: {file:} under a mount,
    # {env:} among the container's variables (from a Secret, not a literal).
    docs = rendered(overlay)
    settings = next(
        d for d in of_kind(docs, "ConfigMap") if d["metadata"]["name"].startswith("parityprobe-settings")
    )
    env_name = settings["data"]["PARITYPROBE_ENV"]
    environments_map = next(
        d for d in of_kind(docs, "ConfigMap") if d["metadata"]["name"].startswith("parityprobe-environments")
    )
    environment = yaml.safe_load(environments_map["data"]["environments.yaml"])["environments"][env_name]
    files, variables = secret_references(environment)
    for workload in of_kind(docs, "Deployment") + of_kind(docs, "CronJob"):
        (container,) = pod_spec(workload)["containers"]
        mounts = [m["mountPath"] for m in container["volumeMounts"]]
        for path in files:
            assert any(path.startswith(m.rstrip("/") + "/") for m in mounts), f"{path} is not mounted"
        env = {e["name"]: e for e in container.get("env", [])}
        for variable in variables:
            assert "secretKeyRef" in env[variable].get("valueFrom", {}), f"{variable} must come from a Secret"


def secret_references(node: Any) -> tuple[list[str], list[str]]:
    files: list[str] = []
    variables: list[str] = []
    for item in walk(node):
        if isinstance(item, dict) and set(item) == {"file"}:
            files.append(item["file"])
        if isinstance(item, dict) and set(item) == {"env"}:
            variables.append(item["env"])
    return files, variables


# ---------------------------------------------------------------------------------------------------------
# The pods: locked down, probed where the daemon listens, reaching only their targets


def workloads() -> list[Any]:
    found = [(rel(p), d) for p in YAML_FILES for d in documents(p) if isinstance(d, dict)]
    found = [
        (w, d) for w, d in found if d.get("kind") in ("Deployment", "CronJob") and "containers" in str(d)
    ]
    # Patches hold partial pods; the complete ones come from the base and the component (and the builds).
    complete = [(w, d) for w, d in found if "securityContext" in json.dumps(d)]
    for overlay in OVERLAYS if kustomize_command() else []:
        complete += [(f"{overlay.name} (built)", d) for d in of_kind(rendered(overlay), "Deployment")]
        complete += [(f"{overlay.name} (built)", d) for d in of_kind(rendered(overlay), "CronJob")]
    return [pytest.param(w, d, id=f"{w}:{d['kind']}") for w, d in complete]


@pytest.mark.parametrize("where,workload", workloads())
def test_pods_run_locked_down(where: str, workload: dict[str, Any]) -> None:
    spec = pod_spec(workload)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] > 0
    assert spec.get("automountServiceAccountToken") is False
    for container in spec["containers"]:
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert "ALL" in context["capabilities"]["drop"]
        assert "memory" in container["resources"]["limits"]
        for variable in container.get("env", []):
            if SECRET_WORD.search(variable["name"]) or variable["name"].endswith("_URL"):
                assert "value" not in variable, f"{variable['name']} must be a secretKeyRef"
    # SIGTERM finishes a step and its cleanups: at least two step timeouts of grace.
    assert spec["terminationGracePeriodSeconds"] >= 2 * default_step_timeout()


def default_step_timeout() -> float:
    ctx = click.Context(main)
    command = main.get_command(ctx, "daemon") or main.get_command(ctx, "run")
    assert command is not None
    (param,) = [p for p in command.params if p.name == "step_timeout"]
    return float(param.default)  # type: ignore[arg-type]


def listen_port(args: list[str]) -> int:
    value = args[args.index("--listen") + 1]
    host, _, port = value.rpartition(":")
    assert host == "0.0.0.0", "the kubelet probes the pod's address: listen on every interface"
    return int(port)


@pytest.mark.parametrize("where,workload", [w for w in workloads() if w.values[1]["kind"] == "Deployment"])
def test_daemon_probes_point_at_its_endpoints(where: str, workload: dict[str, Any]) -> None:
    (container,) = pod_spec(workload)["containers"]
    port = listen_port(container["args"])
    ports = {p.get("name"): p["containerPort"] for p in container["ports"]}
    assert port in ports.values()
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = container[probe]["httpGet"]
        assert get["path"] == path
        assert ports.get(get["port"], get["port"]) == port, f"{probe} is not on the daemon's port"


def network_policies() -> list[tuple[str, dict[str, Any]]]:
    found = [(rel(BASE / "networkpolicy.yaml"), documents(BASE / "networkpolicy.yaml")[0])]
    for overlay in OVERLAYS if kustomize_command() else []:
        found += [(f"{overlay.name} (built)", d) for d in of_kind(rendered(overlay), "NetworkPolicy")]
    return found


@pytest.mark.parametrize("where,policy", [pytest.param(w, p, id=w) for w, p in network_policies()])
def test_network_policy_allows_only_the_targets(where: str, policy: dict[str, Any]) -> None:
    spec = policy["spec"]
    assert {"Egress", "Ingress"} <= set(spec["policyTypes"])
    assert spec["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "parityprobe"
    assert spec["egress"], "an empty egress list under Egress denies DNS too"
    for rule in spec["egress"]:
        # A rule without `to` (or ports) allows every destination (or port).
        assert rule.get("to") and rule.get("ports"), f"allow-all egress rule: {rule}"
        for peer in rule["to"]:
            if "ipBlock" in peer:
                assert ipaddress.ip_network(peer["ipBlock"]["cidr"]).prefixlen >= 8, peer
            else:
                assert peer.get("namespaceSelector", {}).get("matchLabels") and peer.get("podSelector"), peer
    assert [p["port"] for rule in spec["ingress"] for p in rule["ports"]] == [LISTEN_PORT]


# ---------------------------------------------------------------------------------------------------------
# The image


def dockerfile() -> list[tuple[str, str]]:
    return dockerfile_instructions(DEPLOY / "Dockerfile")


def test_dockerfile_is_pinned_non_root_and_secret_free() -> None:
    instructions = dockerfile()
    args = {}
    stages: list[str] = []
    final_user = None
    for keyword, rest in instructions:
        if keyword == "ARG":
            name, _, default = rest.partition("=")
            args[name] = default
        if keyword in ("ARG", "ENV"):
            names = re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", rest) or [rest.split()[0]]
            assert not [n for n in names if SECRET_WORD.search(n)], f"{keyword} {rest}: a secret in the image"
            assert not re.search(r"://[^/\s:@]+:[^/\s@]+@", rest), f"{keyword} {rest}: a password in a URL"
        if keyword == "FROM":
            words = rest.split()
            image = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), ""), words[0])
            if image not in stages:
                tag = image.partition("@")[0].rpartition(":")[2]
                assert ":" in image and tag not in ("", "latest"), f"FROM {image}: pin the base by tag"
            stages.append(words[2] if len(words) > 2 and words[1].upper() == "AS" else image)
            final_user = None
        if keyword == "USER":
            final_user = rest
        if keyword == "ADD":
            assert "://" not in rest, "ADD from a URL: use a pinned, verified download in the build stage"
    assert final_user is not None, "the final stage must switch to a non-root USER"
    uid = final_user.partition(":")[0]
    assert uid.isdigit() and int(uid) > 0, (
        f"USER {final_user}: a numeric, non-root UID (runAsNonRoot checks it)"
    )
    keywords = dict(instructions)
    assert json.loads(keywords["ENTRYPOINT"]) == ["parityprobe"]
    assert stages[0].endswith("slim-bookworm") or "slim" in args.get("PYTHON_IMAGE", ""), "a slim base"


def test_dockerignore_admits_exactly_what_the_image_copies() -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "an allow-list: everything else (.venv, .git, stores, secrets) stays out"
    admitted = {p[1:] for p in patterns if p.startswith("!")}
    for keyword, rest in dockerfile():
        if keyword == "COPY" and not rest.startswith("--from"):
            for source in rest.split()[:-1]:
                assert source in admitted, f"COPY {source}: excluded by .dockerignore"
                assert (REPO / source).exists(), f"COPY {source}: not in the repository"
    assert not admitted & {".venv", ".git", ".parityprobe", "tests"}


def container_engine() -> str | None:
    for engine in ("docker", "podman"):
        if shutil.which(engine):
            answer = subprocess.run([engine, "info"], capture_output=True, timeout=30)
            if answer.returncode == 0:
                return engine
    return None


def test_image_builds_and_runs_as_non_root() -> None:
    engine = container_engine()
    if engine is None:
        pytest.skip("no docker or podman engine answers here: the Dockerfile is linted, not built")
    tag = "parityprobe-deploy-test:latest"
    build = subprocess.run(
        [engine, "build", "-f", str(DEPLOY / "Dockerfile"), "-t", tag, str(REPO)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert build.returncode == 0, build.stderr[-4000:]
    try:
        version = subprocess.run([engine, "run", "--rm", tag, "--version"], capture_output=True, text=True)
        assert version.returncode == 0 and "parityprobe" in version.stdout
        uid = subprocess.run(
            [engine, "run", "--rm", "--entrypoint", "id", tag, "-u"], capture_output=True, text=True
        )
        assert uid.stdout.strip() == "10001"
        usage = subprocess.run([engine, "run", "--rm", tag], capture_output=True, text=True)
        assert usage.returncode == 0 and "daemon" in usage.stdout
    finally:
        subprocess.run([engine, "rmi", "-f", tag], capture_output=True)


# ---------------------------------------------------------------------------------------------------------
# systemd


def unit_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text().replace("\\\n", " ").splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            settings.setdefault(key.strip(), []).append(" ".join(value.split()))
    return settings


def test_systemd_unit_stops_gracefully_and_is_hardened() -> None:
    unit = {key: values[-1] for key, values in unit_settings().items()}
    assert unit["Type"] == "simple"
    assert unit["User"] not in ("root", "0")
    assert unit["StateDirectory"] == "parityprobe"
    assert unit["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert unit["KillSignal"] == "SIGTERM"
    assert unit["Restart"] == "on-failure"
    assert int(unit["TimeoutStopSec"]) >= 2 * default_step_timeout()
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes"}.items():
        assert unit[key] == value, key
    (line,) = unit_commands(UNIT)
    state_dir = line.argv[line.argv.index("--state-dir") + 1]
    assert state_dir == f"/var/lib/{unit['StateDirectory']}"
    assert state_dir in unit["ReadWritePaths"].split()


def test_systemd_environment_file_defines_what_the_unit_uses() -> None:
    example = DEPLOY / "systemd" / "parityprobe-daemon.env.example"
    defined = dict(
        line.split("=", 1) for line in example.read_text().splitlines() if line and not line.startswith("#")
    )
    (line,) = unit_commands(UNIT)
    used = {m for word in line.argv for m in re.findall(r"\$\{?([A-Za-z_]\w*)\}?", word)}
    assert used and used <= set(defined)
    assert defined["PARITYPROBE_ENV"] in yaml.safe_load(EXAMPLE.read_text())["environments"]
    _, variables = secret_references(
        yaml.safe_load(EXAMPLE.read_text())["environments"][defined["PARITYPROBE_ENV"]]
    )
    assert set(variables) <= set(defined), "every {env:} secret of that environment is set"


def test_systemd_analyze_accepts_the_unit(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed: the unit's keys are checked by the test above only")
    copy = tmp_path / UNIT.name
    copy.write_text(UNIT.read_text())
    result = subprocess.run(
        ["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, timeout=60
    )
    # The daemon is not installed in /opt here; anything else (an unknown key, a bad value) is a mistake.
    complaints = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if line.strip() and "is not executable" not in line and "/opt/parityprobe/bin/parityprobe" not in line
    ]
    assert complaints == []


# ---------------------------------------------------------------------------------------------------------
# The example environments file, through the real loader


def example_in(tmp_path: Path, environments: tuple[str, ...]) -> tuple[Path, dict[str, str]]:
    """The example, its /etc/parityprobe/ moved under ``tmp_path``, with a made-up value in each secret file
    of ``environments``; returns the file and the values of the {env:} secrets to set."""
    text = EXAMPLE.read_text().replace("/etc/parityprobe/", f"{tmp_path}/etc/parityprobe/")
    path = tmp_path / "etc" / "parityprobe" / "environments.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    variables: dict[str, str] = {}
    for name in environments:
        files, names = secret_references(yaml.safe_load(text)["environments"][name])
        for index, file in enumerate(files):
            Path(file).parent.mkdir(parents=True, exist_ok=True)
            Path(file).write_text(f"deploy-test-{name}-file-secret-{index}-7f3a9c\n")
        variables.update({v: f"deploy-test-{name}-env-secret-{v}-51be04" for v in names})
    return path, variables


def test_example_environments_load_with_the_real_loader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, variables = example_in(tmp_path, ("staging", "production"))
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    redactor = Redactor()
    loaded = load_environments(path, redactor)
    assert [e.name for e in loaded.environments] == ["staging", "production"]
    for env in loaded.environments:
        assert env.safety.calls_per_hour is not None, "the daemon's budget is set"
        assert "telemetry" in env.sections()
    # Every secret the loader read is masked from then on.
    for value in variables.values():
        assert value not in redactor.redact(f"token={value}")


@pytest.mark.parametrize("name", ["staging", "production"])
def test_one_daemons_environment_needs_only_its_own_secrets(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A daemon pod mounts one environment's Secret: loading its environment must not need the other's.
    path, variables = example_in(tmp_path, (name,))
    for variable, value in variables.items():
        monkeypatch.setenv(variable, value)
    for other in {"PP_STAGING_SECRET_ID", "PP_PRODUCTION_SECRET_ID"} - set(variables):
        monkeypatch.delenv(other, raising=False)
    (env,) = load_environments(path, Redactor(), [name]).environments
    assert env.name == name
