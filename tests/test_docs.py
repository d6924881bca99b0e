"""The documentation that code can check: docs/spec.md is what the schema generates, docs/api.md runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_spec_reference_is_what_the_schema_generates():
    from microcircuit.spec.reference import reference

    committed = (ROOT / "docs" / "spec.md").read_text()
    assert committed == reference(), (
        "docs/spec.md is out of date: python -m microcircuit.spec.reference > docs/spec.md")


def test_spec_reference_names_every_key_of_the_spec():
    from microcircuit.spec.schema import Phase, Projection, Spec

    text = (ROOT / "docs" / "spec.md").read_text()
    for model in (Spec, Projection, Phase):
        for name, field in model.model_fields.items():
            assert f"| `{field.alias or name}` |" in text


def test_api_page_runs(capsys):
    """Every python block of docs/api.md, in order, as one script."""
    text = (ROOT / "docs" / "api.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 5
    namespace: dict = {}
    exec(compile("\n".join(blocks), str(ROOT / "docs" / "api.md"), "exec"), namespace)  # noqa: S102
    out = capsys.readouterr().out
    assert "bars_le" in out and "5.263 ms" in out and "error: parameters.t_pres" in out
    assert namespace["experiment"].result.metric("test", "accuracy")
    assert not namespace["angles"].empty


def test_readme_links_resolve():
    for name in ("README.md", "docs/results.md", "docs/performance.md", "docs/api.md"):
        path = ROOT / name
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text()):
            if re.match(r"^[a-z]+:", target):
                continue
            assert (path.parent / target).exists(), f"{name}: link to {target} does not exist"


def test_code_cites_only_sections_of_docs_model_md():
    """The code cites "model.md sec. N": docs/model.md exists and has every section N cited."""
    sections = set(re.findall(r"(?m)^## (\d+)\.", (ROOT / "docs" / "model.md").read_text()))
    cited = set()
    for path in (ROOT / "microcircuit").rglob("*.py"):
        cited |= set(re.findall(r"model\.md,? sec(?:s)?\. (\d+)", path.read_text()))
    assert cited and cited <= sections, f"cited sections missing from docs/model.md: {cited - sections}"
