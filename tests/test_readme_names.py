"""What the README names exists: its links and anchors, the commands and flags of its shell
lines, the benchmark flags, the service's endpoints, the built-in mappings and their sources,
the ``graphfusion.*`` names, and the Engine methods and keywords its Python examples call.

Cheap checks (no store, no model, no torch import), so that a renamed flag, method or heading
shows up as a failing test rather than as a README that no longer works.
"""

from __future__ import annotations

import ast
import re
import shlex
from functools import cache
from pathlib import Path

import click
import pytest

from graphfusion.cli import main
from graphfusion.mapping import builtin_mappings, load_mapping
from graphfusion.schema import load_schema

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"
FENCE = re.compile(r"```(\w*)\n(.*?)```", re.S)
FLAG = re.compile(r"(?<![\w-])--[a-z][\w-]*")


@cache
def _text() -> str:
    return README.read_text(encoding="utf-8")


def _prose() -> str:
    """The README without its fenced blocks."""
    return FENCE.sub("", _text())


def _spans() -> list[str]:
    """Inline code spans of the prose (they may run over a line break)."""
    return [s.replace("\n", " ") for s in re.findall(r"`([^`]+)`", _prose())]


def _blocks(lang: str) -> list[str]:
    return [body for kind, body in FENCE.findall(_text()) if kind == lang]


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors() -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in _prose().splitlines():
        match = re.match(r"#{1,6} (.+)", line)
        if match:
            slug = _slug(match.group(1))
            n = seen.get(slug, 0)
            out.add(slug if n == 0 else f"{slug}-{n}")
            seen[slug] = n + 1
    return out


def test_internal_links_resolve() -> None:
    targets = re.findall(r"\]\(([^)\s]+)\)", _prose())
    assert targets
    anchors = _anchors()
    bad = []
    for target in targets:
        if "://" in target:
            continue
        path, _, anchor = target.partition("#")
        if (not (ROOT / path).exists()) if path else anchor not in anchors:
            bad.append(target)
    assert not bad, f"README links that lead nowhere: {bad}"


def _commands() -> dict[str, click.Command]:
    assert isinstance(main, click.Group)
    return dict(main.commands)


def _options(command: click.Command) -> set[str]:
    return {o for p in command.params for o in getattr(p, "opts", [])} | {"--help"}


def _shell_lines() -> list[str]:
    """Logical lines of the bash blocks (continuations joined) and the inline spans."""
    lines = []
    for block in _blocks("bash"):
        lines += block.replace("\\\n", " ").splitlines()
    return lines + _spans()


def _invocations() -> list[tuple[str, str, list[str]]]:
    """(the line, the command, the flags after it) of every ``graphfusion COMMAND``."""
    out = []
    for line in _shell_lines():
        try:
            tokens = shlex.split(line.replace("[", " ").replace("]", " "), comments=True)
        except ValueError:  # a span that is no shell (an unbalanced quote in prose)
            continue
        for i, token in enumerate(tokens):
            if token != "graphfusion":
                continue
            rest = tokens[i + 1 :]
            while rest and rest[0].startswith("-"):  # global options: --debug, --config FILE
                rest = rest[2:] if rest[0] == "--config" else rest[1:]
            if not rest or not re.fullmatch(r"[a-z]+", rest[0]):
                continue  # `graphfusion --debug ...`
            flags = []
            for token in rest[1:]:
                if token in {"|", "&&", ";"} or token == "graphfusion":
                    break
                flags += [f for f in FLAG.findall(token) if token.startswith("--")]
            out.append((line, rest[0], flags))
    return out


def test_shell_lines_name_real_commands_and_flags() -> None:
    found = _invocations()
    commands = _commands()
    named = {c for _, c, _ in found}
    # the tour and the sections name every command but `demo`'s siblings at least once
    assert {"generate", "load", "embed", "train", "recommend", "ask", "defects", "serve"} <= named
    bad = []
    for line, command, flags in found:
        if command not in commands:
            bad.append(f"{line!r}: no command {command!r}")
            continue
        unknown = [f for f in flags if f not in _options(commands[command])]
        if unknown:
            bad.append(f"{line!r}: graphfusion {command} has no {unknown}")
    assert not bad, "\n".join(bad)


def test_global_options_exist() -> None:
    globals_ = _options(main)
    for flag in ("--config", "--debug"):
        assert f"graphfusion {flag}" in _prose()
        assert flag in globals_


def _benchmark_flags(module: str) -> str:
    path = ROOT / "benchmarks" / f"{module}.py"
    assert path.exists(), f"README runs benchmarks.{module}, which does not exist"
    return path.read_text(encoding="utf-8") + (ROOT / "benchmarks" / "common.py").read_text(
        encoding="utf-8"
    )


def test_benchmark_commands_take_their_flags() -> None:
    runs = [s for s in _spans() if s.startswith("python -m benchmarks.")]
    assert runs
    bad = []
    for span in runs:
        module = span.split()[2].removeprefix("benchmarks.")
        source = _benchmark_flags(module)
        bad += [f"{span!r}: {f}" for f in FLAG.findall(span) if f'"{f}"' not in source]
    assert not bad, "\n".join(bad)


def test_flags_named_alone_exist_somewhere() -> None:
    """A flag in prose (`--cypher-timeout`) is an option of some command, or a benchmark's."""
    every = set().union(*(_options(c) for c in _commands().values()), _options(main))
    benchmarks = "".join(p.read_text(encoding="utf-8") for p in (ROOT / "benchmarks").glob("*.py"))
    alone = {f for s in _spans() if not re.search(r"graphfusion [a-z-]|python -m", s)
             for f in FLAG.findall(s)}  # fmt: skip
    assert alone
    missing = sorted(f for f in alone if f not in every and f'"{f}"' not in benchmarks)
    assert not missing, f"flags the README names that nothing takes: {missing}"


def test_the_read_only_commands_are_those_with_read_only() -> None:
    match = re.search(r"the commands that only read \(([^)]*)\)", _prose())
    assert match, "the README no longer lists the commands that take --read-only"
    listed = set(re.findall(r"`([a-z]+)`", match.group(1)))
    having = {n for n, c in _commands().items() if "--read-only" in _options(c)}
    assert listed == having


def test_service_endpoints_are_the_app_routes() -> None:
    source = (ROOT / "graphfusion" / "service.py").read_text(encoding="utf-8")
    routes = {(m.upper(), re.sub(r":path}", "}", p))  # ids may hold '/' (`{user_id:path}`)
              for m, p in re.findall(r'@app\.(get|post)\(\s*"([^"]+)"', source)}  # fmt: skip
    named = set(re.findall(r"`(GET|POST) (/[^`\s]*)`", _prose()))
    assert routes
    assert named == routes


def test_mapping_table_is_the_built_in_mappings() -> None:
    section = _prose().split("| mapping | sources |", 1)[1].split("\n\n", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| ([^|]*) \|", section, flags=re.M)
    shipped = {n for n in builtin_mappings() if not n.startswith("live_")}
    assert {name for name, _ in rows} == shipped
    schema = load_schema()
    for name, sources in rows:
        named = set(re.findall(r"`?(\w+)=", sources))
        assert named == set(load_mapping(name, schema).sources), name


@cache
def _module_ast(dotted: str) -> ast.Module | None:
    parts = dotted.split(".")
    for path in (ROOT.joinpath(*parts).with_suffix(".py"), ROOT.joinpath(*parts, "__init__.py")):
        if path.exists():
            return ast.parse(path.read_text(encoding="utf-8"))
    return None


def _defined(body: list[ast.stmt]) -> dict[str, ast.AST]:
    """Top-level names of a module or class body: defs, classes and assignments."""
    out: dict[str, ast.AST] = {}
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            out[node.name] = node
        elif isinstance(node, ast.Assign):
            out.update({t.id: node for t in node.targets if isinstance(t, ast.Name)})
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out[node.target.id] = node
    return out


def _resolves(dotted: str) -> bool:
    """Whether ``graphfusion.a.b.Name.attr`` names a module, or something one defines."""
    parts = dotted.split(".")
    if parts[:2] == ["graphfusion", "Engine"]:  # imported lazily from graphfusion.engine
        parts = ["graphfusion", "engine", *parts[1:]]
    for cut in range(len(parts), 0, -1):
        tree = _module_ast(".".join(parts[:cut]))
        if tree is None:
            continue
        node: ast.AST = tree
        for name in parts[cut:]:
            if name == "__wrapped__" and isinstance(node, ast.FunctionDef):
                return bool(node.decorator_list)
            found = _defined(getattr(node, "body", [])).get(name)
            if found is None:
                return False
            node = found
        return True
    return False


def test_graphfusion_names_exist() -> None:
    names = set(re.findall(r"\bgraphfusion(?:\.[A-Za-z_]\w*)+", _text())) - {"graphfusion.toml"}
    assert len(names) > 20
    missing = sorted(n for n in names if not _resolves(n))
    assert not missing, f"names the README gives that the code does not define: {missing}"


def _engine_methods() -> dict[str, ast.FunctionDef]:
    tree = _module_ast("graphfusion.engine")
    assert tree is not None
    engine = _defined(tree.body)["Engine"]
    assert isinstance(engine, ast.ClassDef)
    return {n.name: n for n in engine.body if isinstance(n, ast.FunctionDef)}


def _train_config_fields() -> set[str]:
    tree = _module_ast("graphfusion.train")
    assert tree is not None
    config = _defined(tree.body)["TrainConfig"]
    assert isinstance(config, ast.ClassDef)
    return {n.target.id for n in config.body
            if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}  # fmt: skip


@pytest.mark.parametrize("index", range(len(_blocks("python"))))
def test_python_examples_call_real_engine_methods(index: int) -> None:
    """Each example parses, and every ``engine.method(..., kw=...)`` it calls exists with
    that keyword (``train``'s settings are ``TrainConfig`` fields)."""
    tree = ast.parse(_blocks("python")[index])
    methods = _engine_methods()
    bad = []
    for call in ast.walk(tree):
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)):
            continue
        owner = call.func.value
        if not (isinstance(owner, ast.Name) and owner.id == "engine"):
            continue
        name = call.func.attr
        if name not in methods:
            bad.append(f"Engine has no method {name}")
            continue
        args = methods[name].args
        takes = {a.arg for a in args.args + args.kwonlyargs}
        if name == "train":
            takes |= _train_config_fields()
        elif args.kwarg is not None:  # load(mapping, **sources)
            continue
        bad += [f"Engine.{name} takes no {k.arg}=" for k in call.keywords
                if k.arg is not None and k.arg not in takes]  # fmt: skip
    assert not bad, "\n".join(bad)


def test_train_config_keywords_in_prose_are_fields() -> None:
    calls = re.findall(r"TrainConfig\(([^)]*)\)", _prose())
    attrs = re.findall(r"TrainConfig\.(\w+)", _prose())
    assert calls and attrs
    named = {k for c in calls for k in re.findall(r"(\w+)=", c)} | set(attrs)
    assert named - _train_config_fields() == set()
