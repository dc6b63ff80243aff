"""The README's PermissionGate, loaded in every supported shape, blocks the Hosting snippet.

Each shape is loaded the way a user would: a file or directory in ``.kithooks/plugins``, an
explicit ``-p`` path through the real ``kithooks`` command, and an entry point of a
distribution really installed by pip. Each must block ``rm -rf /`` emitted exactly as the
README's Hosting snippet emits it.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

import kithooks
from kithooks import PluginManager

ROOT = Path(__file__).resolve().parent.parent
GATE_SOURCE = (ROOT / "examples" / "readme" / "readme_gate.py").read_text()
KITHOOKS = Path(sys.executable).parent / "kithooks"
REASON = "rm -rf is not allowed"
#: The README's Hosting snippet's input, as the host passes it.
HOSTED_INPUT = '{"command": "rm -rf /"}'


def hosting_snippet(pm: PluginManager) -> object:
    """The README's Hosting snippet, verbatim but for the command."""
    return pm.emit(kithooks.ToolCallEvent(tool_name="bash", input='{"command": "rm -rf /"}'))


def gate_as_module_functions() -> str:
    """The README gate's methods as module-level functions (``self`` dropped)."""
    tree = ast.parse(GATE_SOURCE)
    out: list[ast.stmt] = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    item.args.args = item.args.args[1:]
                    out.append(item)
        else:
            out.append(node)
    tree.body = out
    source = ast.unparse(tree)
    assert "class " not in source and "def on_tool_call(event" in source
    return source


def build_wheel(directory: Path, dist: str, version: str, module: str, source: str) -> Path:
    """A minimal, valid wheel holding ``module`` and a ``kithooks`` entry point to its class."""
    tag = f"{dist.replace('-', '_')}-{version}"
    files = {
        f"{module}.py": source.encode(),
        f"{tag}.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n"
        ).encode(),
        f"{tag}.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: kithooks-tests\nRoot-Is-Purelib: true\n"
            b"Tag: py3-none-any\n"
        ),
        f"{tag}.dist-info/entry_points.txt": (
            f"[kithooks]\nreadme-gate = {module}:PermissionGate\n"
        ).encode(),
    }
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{tag}.dist-info/RECORD,,")
    files[f"{tag}.dist-info/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = directory / f"{tag}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return wheel


def pip_install(wheel: Path, target: Path) -> None:
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "--quiet"),
            *("--disable-pip-version-check", "--target", str(target), str(wheel)),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project directory as the working directory, with an empty user config."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    root = tmp_path / "project"
    root.mkdir()
    monkeypatch.chdir(root)
    return root


def load_from_project_dir(project: Path, files: dict[str, str]) -> PluginManager:
    plugins = project / ".kithooks" / "plugins"
    for rel, source in files.items():
        (plugins / rel).parent.mkdir(parents=True, exist_ok=True)
        (plugins / rel).write_text(source)
    pm = PluginManager()
    pm.load_plugin_files()  # the README's call: user dir, then .kithooks/plugins
    return pm


def shape_module_functions(project: Path, tmp_path: Path, mp: pytest.MonkeyPatch) -> object:
    pm = load_from_project_dir(project, {"gate.py": gate_as_module_functions()})
    assert pm.plugin_source("gate").kind == "file"
    return checked(pm, "gate")


def shape_class_in_file(project: Path, tmp_path: Path, mp: pytest.MonkeyPatch) -> object:
    pm = load_from_project_dir(project, {"gate.py": GATE_SOURCE})
    assert pm.plugin_source("gate:PermissionGate").kind == "class"
    return checked(pm, "gate:PermissionGate")


def shape_directory_main(project: Path, tmp_path: Path, mp: pytest.MonkeyPatch) -> object:
    pm = load_from_project_dir(project, {"gate/main.py": GATE_SOURCE})
    assert pm.plugin_source("gate:PermissionGate").kind == "class"
    return checked(pm, "gate:PermissionGate")


def shape_directory_package(project: Path, tmp_path: Path, mp: pytest.MonkeyPatch) -> object:
    pm = load_from_project_dir(project, {"gate/__init__.py": GATE_SOURCE})
    return checked(pm, "gate:PermissionGate")


def shape_entry_point(project: Path, tmp_path: Path, mp: pytest.MonkeyPatch) -> object:
    wheel = build_wheel(tmp_path, "kh-readme-gate", "1.0", "kh_readme_gate", GATE_SOURCE)
    target = tmp_path / "site"
    pip_install(wheel, target)
    assert (target / "kh_readme_gate-1.0.dist-info" / "RECORD").is_file()
    mp.syspath_prepend(str(target))
    mp.delitem(sys.modules, "kh_readme_gate", raising=False)
    pm = PluginManager()
    assert pm.load_entrypoints() == ["readme-gate"]
    source = pm.plugin_source("readme-gate")
    assert (source.distribution, source.version) == ("kh-readme-gate", "1.0")
    return checked(pm, "readme-gate")


def checked(pm: PluginManager, name: str) -> object:
    assert pm.load_errors == [], [e.message for e in pm.load_errors]
    handlers = [n for n in pm.handler_names("tool_call") if n != "turn-aggregator"]
    assert handlers == [name]
    return hosting_snippet(pm)


SHAPES: dict[str, Callable[[Path, Path, pytest.MonkeyPatch], object]] = {
    "module-functions": shape_module_functions,
    "class-in-file": shape_class_in_file,
    "directory-main": shape_directory_main,
    "directory-package": shape_directory_package,
    "entry-point": shape_entry_point,
}


@pytest.mark.parametrize(
    "shape",
    [pytest.param(s, marks=pytest.mark.slow) if s == "entry-point" else s for s in SHAPES]
    + [pytest.param("cli-p", marks=pytest.mark.slow)],
)
def test_the_readme_gate_blocks_rm_rf_in_every_shape(shape, project, tmp_path, monkeypatch):
    if shape == "cli-p":
        block = cli_replay_block(project, tmp_path)
        assert block["plugin"] == "gate:PermissionGate"
        assert REASON in block["detail"]
        return
    result = SHAPES[shape](project, tmp_path, monkeypatch)
    assert isinstance(result, kithooks.ToolCallResult)
    assert result.block and result.reason == REASON


def cli_replay_block(project: Path, tmp_path: Path) -> dict[str, str]:
    """``kithooks replay rec.jsonl -p gate.py``: the event is the Hosting snippet's."""
    gate = tmp_path / "elsewhere" / "gate.py"
    gate.parent.mkdir()
    gate.write_text(GATE_SOURCE)
    recording = tmp_path / "rec.jsonl"
    line = {"session_id": "s", "turn_id": "t1", "event": {"type": "tool_call"}}
    line["event"].update(tool_name="bash", input=HOSTED_INPUT)  # type: ignore[attr-defined]
    recording.write_text(json.dumps(line) + "\n")
    proc = subprocess.run(
        [str(KITHOOKS), "replay", str(recording), "-p", str(gate), "--no-entrypoints", "--json"],
        cwd=project,
        env={**os.environ, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["plugins"] == ["gate:PermissionGate"] and report["load_errors"] == []
    actions = [a for turn in report["turns"] for a in turn["actions"]]
    blocks = [a for a in actions if a["kind"] == "block"]
    assert len(blocks) == 1, actions
    return blocks[0]


def test_the_module_functions_shape_is_the_readme_gate_without_self():
    source = gate_as_module_functions()
    namespace: dict[str, object] = {}
    exec(compile(source, "gate.py", "exec"), namespace)
    fn = namespace["on_tool_call"]
    assert callable(fn)
    event = kithooks.ToolCallEvent(tool_name="bash", parsed_args={"command": "rm -rf /"})
    result = fn(event, kithooks.Context())
    assert result == kithooks.ToolCallResult(block=True, reason=REASON)
    assert textwrap.dedent(source).count("@kithooks.hookimpl") == 2
