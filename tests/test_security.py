"""Specs and run files are data, never code.

- YAML is loaded safely: a ``!!python/...`` tag (or any tag but the plain scalar ones) is a
  SpecError and nothing is constructed or executed, wherever it is written (a value, a key, the
  whole document, a ``--set`` value, an extended file);
- ``extends:`` only reads a file: a cycle is an error naming the files, an error inside an
  extended file names that file, and the value is a path, never evaluated;
- no spec value is evaluated as code: ``size: "__import__('os')"`` is a type error, ``$g_l*2`` is
  not a reference, templates and shell syntax stay literal text;
- checkpoints hold tensors and primitives only, so they load with ``torch.load(weights_only=True)``,
  which is also how the package loads them; a pickled payload is refused, not run.
"""

from __future__ import annotations

import ast
import pickle
import re
from pathlib import Path

import pytest
import torch

from microcircuit.cli import main
from microcircuit.spec import SpecError, load_spec, load_spec_text
from tests.conftest import CIRCUITS, ROOT

BASE = ROOT / "tests" / "spec" / "base.yaml"
PACKAGE = ROOT / "microcircuit"


def marker_command(marker: Path) -> str:
    return f"touch {marker}"


def spec_error(content: str | bytes, filename: str, overrides: tuple[str, ...] = ()) -> SpecError:
    with pytest.raises(SpecError) as info:
        load_spec_text(content, filename, list(overrides))
    return info.value


# ---------------------------------------------------------------- safe YAML
TAGGED = {
    "value": "schema: microcircuit/1\nname: !!python/object/apply:os.system ['{cmd}']\n",
    "nested value": "populations:\n  x: {{cell: input, size: !!python/object/apply:os.system ['{cmd}']}}\n",
    "key": "? !!python/object/apply:os.system ['{cmd}']\n: 1\n",
    "document": "!!python/object/apply:os.system ['{cmd}']\n",
    "mapping tag": "!!python/object/new:os.system ['{cmd}']\n",
    "name tag": "name: !!python/name:os.system\n",
    "module tag": "name: !!python/module:os\n",
    "local tag": "name: !shell '{cmd}'\n",
    "list item": "record:\n  - !!python/object/apply:subprocess.call [['sh', '-c', '{cmd}']]\n",
}


@pytest.mark.parametrize("where", sorted(TAGGED))
def test_python_tags_are_spec_errors_and_nothing_runs(where: str, tmp_path: Path):
    marker = tmp_path / "pwned"
    text = TAGGED[where].format(cmd=marker_command(marker))
    err = spec_error(text, str(tmp_path / "evil.yaml"))
    assert re.search(r"evil\.yaml:\d+:\d+: error: .*(unsupported YAML tag|a key must be a plain name|"
                     r"a spec must be a mapping)", str(err)), str(err)
    assert not marker.exists()


def test_a_python_tag_in_a_set_value_is_an_error_and_nothing_runs(tmp_path: Path):
    marker = tmp_path / "pwned"
    override = f"name=!!python/object/apply:os.system ['{marker_command(marker)}']"
    err = spec_error(BASE.read_text(), str(BASE), (override,))
    (problem,) = err.errors
    assert problem.file == "<command line>" and "unsupported YAML tag '!!python/object/apply:os.system'" in str(err)
    assert not marker.exists()


def test_the_package_loads_yaml_only_with_safe_loaders():
    """Every yaml.load/compose/... call in the package names a SafeLoader subclass (or is safe_*)."""
    unsafe = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "yaml"):
                continue
            name = node.func.attr
            if name in ("unsafe_load", "full_load", "load_all", "unsafe_load_all", "full_load_all"):
                unsafe.append(f"{path.name}:{node.lineno}: yaml.{name}")
            elif name in ("load", "compose", "compose_all", "parse"):
                loader = next((k.value for k in node.keywords if k.arg == "Loader"), None)
                source = ast.unparse(loader) if loader is not None else ""
                if source not in ("PositionLoader", "yaml.SafeLoader", "SafeLoader", "yaml.CSafeLoader"):
                    unsafe.append(f"{path.name}:{node.lineno}: yaml.{name}(Loader={source or 'default'})")
    assert not unsafe, unsafe


def test_the_package_never_evaluates_text():
    """No eval/exec/compile of strings anywhere in the package."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in (
                    "eval", "exec", "compile", "__import__"):
                found.append(f"{path.name}:{node.lineno}: {node.func.id}")
    assert not found, found


# ---------------------------------------------------------------- extends
def test_extends_cycle_is_an_error_naming_the_files(tmp_path: Path):
    (tmp_path / "a.yaml").write_text("extends: b.yaml\nname: a\n")
    (tmp_path / "b.yaml").write_text("extends: c.yaml\nname: b\n")
    (tmp_path / "c.yaml").write_text("extends: a.yaml\nname: c\n")
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path / "a.yaml")
    (problem,) = info.value.errors
    assert Path(problem.file).name == "c.yaml" and problem.line == 1 and problem.path == "extends"
    assert re.search(r"extends cycle: .*a\.yaml -> .*b\.yaml -> .*c\.yaml -> .*a\.yaml", problem.message)


def test_a_spec_extending_itself_is_a_cycle(tmp_path: Path):
    (tmp_path / "self.yaml").write_text("name: s\nextends: self.yaml\n")
    with pytest.raises(SpecError, match=r"self\.yaml:2:1: error: extends: extends cycle: .*self\.yaml -> "):
        load_spec(tmp_path / "self.yaml")


def test_an_error_inside_an_extended_file_names_that_file(tmp_path: Path):
    parent = tmp_path / "parent.yaml"
    parent.write_text(BASE.read_text().replace("pyr_1: {cell: pyramidal, size: 3}",
                                               "pyr_1: {cell: pyramidal, size: three}"))
    child = tmp_path / "child.yaml"
    child.write_text("extends: parent.yaml\nname: child\n")
    with pytest.raises(SpecError) as info:
        load_spec(child)
    (problem,) = info.value.errors
    line = next(n for n, row in enumerate(parent.read_text().splitlines(), 1) if "size: three" in row)
    assert (Path(problem.file).name, problem.line, problem.path) == ("parent.yaml", line, "populations.pyr_1.size")


def test_yaml_errors_and_tags_inside_an_extended_file_name_that_file(tmp_path: Path):
    marker = tmp_path / "pwned"
    (tmp_path / "evil.yaml").write_text(f"name: !!python/object/apply:os.system ['{marker_command(marker)}']\n")
    (tmp_path / "broken.yaml").write_bytes(b"name: [unclosed\n")
    (tmp_path / "binary.yaml").write_bytes(b"\x7fELF\x00\x00\x01")
    for parent, pattern in (("evil.yaml", r"evil\.yaml:1:7: error: name: unsupported YAML tag"),
                            ("broken.yaml", r"broken\.yaml:2:1: error: invalid YAML"),
                            ("binary.yaml", r"binary\.yaml:1:5: error: binary file")):
        child = tmp_path / f"child_of_{parent}"
        child.write_text(f"extends: {parent}\nname: child\n")
        with pytest.raises(SpecError, match=pattern):
            load_spec(child)
    assert not marker.exists()


@pytest.mark.parametrize("value, pattern", [
    ("__import__('os').system('touch pwned')",
     r"cannot read '.*__import__\('os'\)\.system\('touch pwned'\)': no such file"),
    ("$(touch pwned)", r"cannot read '.*\$\(touch pwned\)': no such file"),
    (".", r"cannot read '.*': no such file"),
    ("[a.yaml, b.yaml]", r"expected the name of a spec file, got a list"),
    ("{file: a.yaml}", r"expected the name of a spec file, got a mapping"),
    ("''", r"expected the name of a spec file, got ''"),
])
def test_extends_is_a_file_name_never_evaluated(value: str, pattern: str, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    err = spec_error(f"name: x\nextends: {value}\n", str(tmp_path / "child.yaml"))
    (problem,) = err.errors
    assert problem.path == "extends" and problem.line == 2 and re.search(pattern, problem.message), str(err)
    assert list(tmp_path.iterdir()) == []


def test_extends_cannot_be_set_on_the_command_line(tmp_path: Path):
    err = spec_error(BASE.read_text(), str(BASE), (f"extends={tmp_path / 'other.yaml'}",))
    assert "extends cannot be set on the command line" in str(err)


# ---------------------------------------------------------------- values are data
@pytest.mark.parametrize("override, path, pattern", [
    ("populations.pyr_1.size=\"__import__('os').system('true')\"", "populations.pyr_1.size",
     r"expected an integer, got \"__import__\('os'\)\.system\('true'\)\""),
    ("populations.pyr_1.size='3'", "populations.pyr_1.size", r"expected an integer, got '3'"),
    ("dt=\"0.1 * 2\"", "dt", r"expected a number, got '0\.1 \* 2'"),
    ("projections.nudge_1.conductance=$g_som*2", "projections.nudge_1.conductance",
     r"'\$g_som\*2' is not a reference: expressions are not evaluated"),
    ("projections.up_1.w_max=${g_l}", "projections.up_1.w_max", r"'\$\{g_l\}' is not a reference"),
    ("populations.pyr_1.activation='lambda u: u'", "populations.pyr_1.activation",
     r"unknown activation 'lambda u: u'"),
])
def test_values_are_never_evaluated(override: str, path: str, pattern: str):
    err = spec_error(BASE.read_text(), str(BASE), (override,))
    found = [p for p in err.errors if p.path == path]
    assert found and re.search(pattern, found[0].message), str(err)


def test_code_like_text_stays_literal(tmp_path: Path):
    marker = tmp_path / "pwned"
    text = f"{{{{ 7*7 }}}}$(touch {marker})`touch {marker}` ${{HOME}} %(x)s {{0}}"
    spec, resolved, _ = load_spec_text(BASE.read_text().replace(
        "description: 2-3-2 LE microcircuit for the spec tests.", f"description: '{text}'"), str(BASE))
    assert spec.description == text and resolved["description"] == text
    assert not marker.exists()
    # as a name, such text is refused: a name is one safe folder name (tests/test_reliability.py)
    with pytest.raises(SpecError, match="a name must be one folder name"):
        load_spec_text(BASE.read_text().replace("name: base", f"name: '{text}'"), str(BASE))
    assert not marker.exists()


# ---------------------------------------------------------------- checkpoints
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A finished bars run (1 epoch, t_pres = 3 steps) made through the command line."""
    out = tmp_path_factory.mktemp("runs")
    code = main(["run", str(CIRCUITS / "bars_le.yaml"), "--out", str(out), "--set", "protocol.0.epochs=1",
                 "--set", "parameters.t_pres=3", "--no-plot", "-q"])
    assert code == 0
    (run_dir,) = (out / "bars_le").iterdir()
    return run_dir


def test_checkpoints_load_with_weights_only(tiny_run: Path):
    payload = torch.load(tiny_run / "checkpoints" / "final.pt", weights_only=True)
    assert payload["spec_name"] == "bars_le" and payload["cursor"]["phase"] == 2
    assert set(payload["state"]) >= {"weights/up_1", "weights/up_2", "u/pyr_1"}
    assert all(isinstance(v, torch.Tensor) for v in payload["state"].values())


def test_the_package_loads_checkpoints_only_with_weights_only():
    calls = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "torch"):
                safe = any(k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
                           for k in node.keywords)
                calls.append((f"{path.name}:{node.lineno}", safe))
    assert calls, "expected the package to load checkpoints somewhere"
    assert all(safe for _, safe in calls), [where for where, safe in calls if not safe]


class _Exploit:
    """Pickles to a call of os.system: what torch.load(weights_only=False) would run."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        import os

        return os.system, (self.command,)


def test_a_pickled_payload_in_a_checkpoint_is_refused_not_run(tiny_run: Path, tmp_path: Path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"format": 1, "cursor": _Exploit(marker_command(marker))}, evil)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(evil, weights_only=True)
    assert not marker.exists()


def test_resuming_from_a_doctored_checkpoint_runs_nothing(tiny_run: Path, tmp_path: Path, capsys):
    """``run --resume`` loads the checkpoint with weights_only=True: a doctored one fails, nothing runs."""
    import json
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run, run_dir)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    manifest["status"] = "interrupted"
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    marker = tmp_path / "pwned"
    torch.save({"format": 1, "cursor": _Exploit(marker_command(marker))}, run_dir / "checkpoints" / "final.pt")
    # its checksum no longer matches the manifest's: it is skipped unread, the run continues from the
    # start checkpoint instead
    code = main(["run", "--resume", str(run_dir), "--no-plot", "-q"])
    assert "final.pt: damaged (checksum differs from the manifest's); skipped" in capsys.readouterr().err
    assert code == 0
    assert not marker.exists()
    # with the manifest's checksum forged too, torch.load(weights_only=True) refuses the pickle: nothing runs
    from microcircuit.checksums import sha256_hex

    manifest = json.loads((run_dir / "manifest.json").read_text())
    manifest["status"] = "interrupted"
    data = (run_dir / "checkpoints" / "doctored.pt")
    torch.save({"format": 1, "cursor": _Exploit(marker_command(marker))}, data)
    manifest["checkpoints"] = {"final": {"file": "checkpoints/doctored.pt", "bytes": data.stat().st_size,
                                         "sha256": sha256_hex(data.read_bytes()), "cursor": [9, 9]}}
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    code = main(["run", "--resume", str(run_dir), "--no-plot", "-q"])
    assert "doctored.pt: cannot be loaded (UnpicklingError); skipped" in capsys.readouterr().err
    assert code == 2
    assert not marker.exists()
