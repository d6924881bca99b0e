"""Safe YAML loading that remembers where every key was written.

:func:`load_yaml` composes the document with a :class:`yaml.SafeLoader` subclass (no
object is ever constructed from a tag) and builds plain Python values itself, so that it
can

- record the 1-based line and column of every mapping key and list item by its path
  (``("projections", "up_1", "rule")``, ``("protocol", 0, "t_pres")``),
- report duplicate keys (PyYAML silently keeps the last one),
- reject YAML 1.1 booleans (``yes/no/on/off/y/n``): only ``true``/``false`` are booleans,
- turn every YAML problem (tabs, bad indentation, several documents, binary or
  non-UTF-8 content, an empty file, a document that is not a mapping) into a
  :class:`~microcircuit.spec.errors.SpecError` with ``file:line:col``.

Plain scalars such as ``1e-3`` are read as numbers (YAML 1.2), unlike PyYAML's YAML 1.1
resolver which leaves them as strings; ``-0.0`` is read as ``0.0``. Recursive aliases and
nesting deeper than the parser can follow are errors too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Any

import yaml

from microcircuit.spec.errors import Problem, SpecError, SpecWarning

#: A location inside a spec: mapping keys and list indices from the root.
Path = tuple[str | int, ...]
#: the file name of problems in ``--set`` overrides (the n-th override is line n)
COMMAND_LINE = "<command line>"

#: Plain scalars that YAML 1.1 readers take as booleans; ambiguous, so rejected.
YAML11_BOOLEANS = frozenset({"yes", "no", "on", "off", "y", "n"})
_KEY_BOOLEANS = frozenset({"yes", "no", "on", "off"})  # keys 'y', 'n' stay plain names
_YAML12_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_MAX_NODES = 200_000  # guards against alias ("billion laughs") expansion

_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_TAG + name for name in ("str", "int", "float", "bool", "null")}
_COLLECTION_TAGS = {yaml.MappingNode: _TAG + "map", yaml.SequenceNode: _TAG + "seq"}


def dotted(path: Path) -> str:
    """``("protocol", 0, "t_pres")`` -> ``"protocol.0.t_pres"``."""
    return ".".join(str(part) for part in path)


def is_under(path: Path, ancestor: Path) -> bool:
    """True if ``path`` equals ``ancestor`` or lies below it."""
    return path[: len(ancestor)] == ancestor


@dataclass(frozen=True)
class Mark:
    """A 1-based position in a file (line 0 = unknown)."""

    file: str
    line: int
    col: int


class SourceMap:
    """Where each key of a (merged, resolved) spec was written.

    ``positions`` maps a path to the :class:`Mark` of its key. ``origins`` maps a path
    whose value was copied from elsewhere (a default) to the path it came from, so that
    a bad default is reported once, where it is written.
    """

    def __init__(self, file: str, positions: dict[Path, Mark] | None = None):
        self.file = file
        self.positions: dict[Path, Mark] = dict(positions or {})
        self.origins: dict[Path, Path] = {}
        #: use site -> the ``parameters`` entry its ``$reference`` copied (a bad value is reported there)
        self.references: dict[Path, Path] = {}
        #: the ``--set`` strings, the n-th at ``<command line>:n``
        self.command_line: list[str] = []

    def origin_of(self, path: Path) -> Path:
        """The path that defines ``path``'s value (following copied defaults)."""
        for _ in range(8):  # origins never chain deeply; the bound guards against loops
            for n in range(len(path), 0, -1):
                origin = self.origins.get(path[:n])
                if origin is not None:
                    path = origin + path[n:]
                    break
            else:
                return path
        return path

    def locate(self, path: Path) -> tuple[Path, Mark]:
        """The defining path and the position of its nearest recorded ancestor."""
        path = self.origin_of(path)
        for n in range(len(path), -1, -1):
            mark = self.positions.get(path[:n])
            if mark is not None:
                return path, mark
        return path, Mark(self.file, 0, 0)

    def problem(self, path: Path, message: str, hint: str = "", warning: bool = False) -> Problem:
        """A :class:`Problem` (or :class:`SpecWarning`) located at ``path``.

        A value that a ``$reference`` copied from ``parameters`` is reported where the parameter is
        defined (a file line or a ``--set``), with the place that uses it as a note; problems of the
        same parameter from several places merge into one with a note each
        (:func:`~microcircuit.spec.errors.merge_problems`).
        """
        where, mark = self.locate(path)
        notes: tuple[str, ...] = ()
        for n in range(len(where), 0, -1):
            parameter = self.references.get(where[:n])
            if parameter is not None:
                notes = (f"{_at(mark)}: note: {dotted(where)} uses ${parameter[-1]} here",)
                where, mark = self.locate(parameter + where[n:])
                break
        if mark.file == COMMAND_LINE and 0 < mark.line <= len(self.command_line):
            message = f"{message} (--set {self.command_line[mark.line - 1]})"
        cls = SpecWarning if warning else Problem
        return cls(mark.file, mark.line, mark.col, dotted(where), message, hint, notes=notes)

    def replace_subtree(self, path: Path, positions: dict[Path, Mark]) -> None:
        """Forget everything recorded below ``path`` and record ``positions`` instead."""
        for table in (self.positions, self.origins):
            for key in [k for k in table if is_under(k, path)]:
                del table[key]
        self.positions.update(positions)


def _at(mark: Mark) -> str:
    return f"{mark.file}:{mark.line}:{mark.col}" if mark.line else mark.file


class PositionLoader(yaml.SafeLoader):
    """SafeLoader used only to *compose* node trees; values are built by :func:`load_yaml`."""


def load_yaml(content: str | bytes, file: str, *, scalar_ok: bool = False,
              line: int = 1, col: int = 1) -> tuple[Any, dict[Path, Mark]]:
    """Parse one YAML document into plain values and the positions of its keys.

    Args:
        content: the text, or raw bytes (checked to be UTF-8 text).
        file: the name used in messages.
        scalar_ok: accept any document (for ``--set`` values); otherwise the document
            must be a non-empty mapping.
        line, col: position of the first character (to place ``--set`` values).

    Returns:
        ``(value, positions)``; ``positions`` maps each key's path to its :class:`Mark`,
        with ``()`` for the document itself.

    Raises:
        SpecError: for anything that is not one well-formed, safe YAML document.
    """
    def mark(m: yaml.Mark | None) -> Mark:
        if m is None:
            return Mark(file, line, col)
        return Mark(file, line + m.line, (col + m.column) if m.line == 0 else m.column + 1)

    def fail(m: yaml.Mark | None, message: str, hint: str = "") -> SpecError:
        where = mark(m)
        return SpecError([Problem(where.file, where.line, where.col, "", message, hint)])

    text = _decode(content, file) if isinstance(content, bytes) else content
    try:
        node = yaml.compose(text, Loader=PositionLoader)
    except yaml.MarkedYAMLError as exc:
        message, hint = _yaml_message(exc)
        where = mark(exc.problem_mark)
        notes = _show_line(text, exc.problem_mark) if _is_indentation(exc) else ()
        if notes and "mapping values" in (exc.problem or ""):
            message = (f"check the indentation of line {where.line}, or quote its value: a ': ' where a value "
                       f"should be (the parser: {exc.problem})")
            hint = "quote a value that contains ': ', e.g. description: 'a: b'"
        elif notes:
            message = (f"check the indentation of line {where.line}: it does not line up with the lines around it "
                       f"(the parser: {exc.problem})")
            hint = "indent the keys of one mapping by the same number of spaces"
        raise SpecError([Problem(where.file, where.line, where.col, "", message, hint, notes=notes)]) from None
    except yaml.reader.ReaderError as exc:
        raise _reader_error(exc, text, file, line, col) from None
    except yaml.YAMLError as exc:  # pragma: no cover - other PyYAML errors carry marks
        raise fail(None, f"invalid YAML: {exc}") from None
    except RecursionError:
        raise _too_deep(text, mark) from None

    if node is None:
        if scalar_ok:
            return None, {}
        raise fail(None, "empty spec: expected a mapping with schema, name, populations, ...")
    if not scalar_ok and not isinstance(node, yaml.MappingNode):
        # the value itself is not shown: the file may be anything a user pointed at
        kind = "a list" if isinstance(node, yaml.SequenceNode) else "a single value"
        raise fail(node.start_mark, f"a spec must be a mapping (key: value), got {kind}")

    builder = _Builder(mark)
    try:
        value = builder.build(node, ())
    except RecursionError:
        raise _too_deep(text, mark) from None
    if builder.problems:
        raise SpecError(builder.problems)
    builder.positions[()] = mark(node.start_mark)
    return value, builder.positions


def load_yaml_file(file: str | FsPath, display: str | None = None) -> tuple[dict, dict[Path, Mark]]:
    """Read and parse a spec file (see :func:`load_yaml`); unreadable files are a SpecError."""
    name = display or str(file)
    try:
        content = FsPath(file).read_bytes()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise SpecError([Problem(name, 0, 0, "", f"cannot read spec: {reason}")]) from None
    return load_yaml(content, name)


class _Builder:
    """Turns a composed node tree into dicts, lists and scalars, recording positions."""

    def __init__(self, mark):
        self.mark = mark
        self.positions: dict[Path, Mark] = {}
        self.problems: list[Problem] = []
        self.nodes = 0
        self.open: set[int] = set()  # ids of the collections being built (to catch recursive aliases)
        self.constructor = yaml.SafeLoader("")  # only its scalar constructors are used

    def error(self, node: yaml.Node, message: str, hint: str = "", path: Path = ()) -> None:
        where = self.mark(node.start_mark)
        self.problems.append(Problem(where.file, where.line, where.col, dotted(path), message, hint))

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.nodes += 1
        if self.nodes > _MAX_NODES:
            where = self.mark(node.start_mark)
            raise SpecError([Problem(where.file, where.line, where.col, dotted(path),
                                     f"document too large (over {_MAX_NODES} nodes; alias expansion?)")])
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, path)
        if node.tag != _COLLECTION_TAGS.get(type(node)):
            tag = node.tag.replace(_TAG, "!!", 1)
            self.error(node, f"unsupported YAML tag '{tag}'", "remove the tag", path)
            return None
        if id(node) in self.open:
            self.error(node, "recursive alias: a value that contains itself", "remove the alias", path)
            return None
        self.open.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self.mapping(node, path)
            items = []
            for index, item in enumerate(node.value):
                self.positions[path + (index,)] = self.mark(item.start_mark)
                items.append(self.build(item, path + (index,)))
            return items
        finally:
            self.open.discard(id(node))

    def mapping(self, node: yaml.MappingNode, path: Path) -> dict:
        out: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.error(key_node, "a key must be a plain name, not a mapping or list", path=path)
                continue
            key = key_node.value
            if key_node.tag == _TAG + "merge":
                self.error(key_node, "merge keys ('<<') are not supported",
                           "use 'extends:' or 'defaults:' to share settings", path)
                continue
            if key_node.style is None and key.lower() in _KEY_BOOLEANS:
                self.error(key_node, f"key '{key}' is a YAML 1.1 boolean",
                           f"quote it ('{key}') if you mean the name", path + (key,))
            if key in out:
                self.error(key_node, f"duplicate key '{key}' (first defined at line {first_line[key]})",
                           "delete one of them", path + (key,))
                continue
            here = self.mark(key_node.start_mark)
            first_line[key] = here.line
            self.positions[path + (key,)] = here
            out[key] = self.build(value_node, path + (key,))
        return out

    def scalar(self, node: yaml.ScalarNode, path: Path) -> Any:
        plain = node.style is None
        if plain and node.value.lower() in YAML11_BOOLEANS:
            self.error(node, f"'{node.value}' is a YAML 1.1 boolean; only true and false are booleans",
                       f"write true or false, or quote it ('{node.value}') for a string", path)
            return node.value
        if node.tag == _TAG + "timestamp":
            return node.value  # dates stay text; nothing in a spec is a date
        if node.tag not in _SCALAR_TAGS:
            tag = node.tag.replace(_TAG, "!!", 1)
            self.error(node, f"unsupported YAML tag '{tag}'", "remove the tag", path)
            return node.value
        if plain and node.tag == _TAG + "str" and _YAML12_FLOAT.match(node.value):
            value = float(node.value)
        else:
            try:
                value = self.constructor.construct_object(node, deep=True)
            except (ValueError, KeyError, yaml.YAMLError):  # e.g. '!!int abc', '!!bool maybe'
                tag = node.tag.replace(_TAG, "!!", 1)
                shown = node.value if len(node.value) <= 40 else node.value[:37] + "..."
                hint = "remove the tag" if node.tag != self.constructor.resolve(yaml.ScalarNode, node.value,
                                                                                (True, False)) else (
                    "write a smaller number")
                self.error(node, f"cannot read '{shown}' as {tag}", hint, path)
                return node.value
        if isinstance(value, float) and value == 0.0:
            return 0.0  # -0.0 means zero (numpy's uniform(-a, a) refuses a = -0.0)
        return value


def _decode(content: bytes, file: str) -> str:
    """UTF-8 text of a spec file, or a SpecError for binary or mis-encoded content."""
    if b"\x00" in content:
        at = content.index(b"\x00")
        line = content.count(b"\n", 0, at) + 1
        col = at - (content.rfind(b"\n", 0, at) + 1) + 1
        raise SpecError([Problem(file, line, col, "", "binary file (contains NUL bytes), not a YAML spec")])
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = content.count(b"\n", 0, exc.start) + 1
        col = exc.start - (content.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SpecError([Problem(file, line, col, "",
                                 f"not UTF-8 text (byte 0x{content[exc.start]:02x})",
                                 "save the file as UTF-8")]) from None
    return text.removeprefix("\ufeff")


def _yaml_message(exc: yaml.MarkedYAMLError) -> tuple[str, str]:
    """A readable message and hint for a PyYAML scanner/parser/composer error."""
    problem = exc.problem or "invalid YAML"
    if "'\\t'" in problem:
        return "tab character: YAML indentation must use spaces", "replace tabs by spaces"
    if "expected a single document" in f"{exc.context} {problem}":
        return "more than one YAML document ('---'): a spec is one document", "split it into files"
    context = f" ({exc.context})" if exc.context else ""
    return f"invalid YAML: {problem}{context}", ""


#: what PyYAML says when a line is indented differently from the mapping it should belong to
_INDENTATION = ("expected <block end>", "did not find expected key", "mapping values are not allowed here")
#: flow nesting ([ or {) beyond which a document is called too deep, to locate it
_DEEP = 64


def _is_indentation(exc: yaml.MarkedYAMLError) -> bool:
    return exc.problem_mark is not None and any(s in (exc.problem or "") for s in _INDENTATION)


def _show_line(text: str, m: yaml.Mark) -> tuple[str, ...]:
    """The offending line and a caret under the column, as two note lines."""
    lines = text.splitlines()
    if not 0 <= m.line < len(lines):
        return ()
    shown = lines[m.line]
    shown = shown if len(shown) <= 200 else shown[:197] + "..."
    return (f"    {m.line + 1:>4} | {shown}", f"         | {' ' * min(m.column, 200)}^")


def _too_deep(text: str, mark) -> SpecError:
    """"Nested too deeply", located at the first bracket beyond :data:`_DEEP` levels of flow nesting, or
    else at the most indented line (block nesting)."""
    depth, quote, where = 0, "", None
    for row, line in enumerate(text.splitlines()):
        for column, char in enumerate(line):
            if quote:
                quote = "" if char == quote else quote
            elif char in "'\"":
                quote = char
            elif char == "#" and (column == 0 or line[column - 1].isspace()):
                break
            elif char in "[{":
                depth += 1
                if depth > _DEEP and where is None:
                    where = (row, column)
            elif char in "]}":
                depth -= 1
        if where is not None:
            break
    if where is None:
        rows = text.splitlines() or [""]
        row = max(range(len(rows)), key=lambda r: len(rows[r]) - len(rows[r].lstrip(" -")))
        where = (row, len(rows[row]) - len(rows[row].lstrip(" -")))
    at = mark(yaml.Mark("", 0, where[0], where[1], None, None))
    return SpecError([Problem(at.file, at.line, at.col, "", f"YAML nested too deeply (beyond line {at.line}, "
                              f"column {at.col}): more levels than the parser follows",
                              "a spec needs a few levels of nesting")])


def _reader_error(exc: yaml.reader.ReaderError, text: str, file: str, line: int, col: int) -> SpecError:
    """A SpecError for a character PyYAML refuses to read (control characters)."""
    at = exc.position
    row = text.count("\n", 0, at)
    column = at - (text.rfind("\n", 0, at) + 1)
    mark = Mark(file, line + row, (col + column) if row == 0 else column + 1)
    code = exc.character if isinstance(exc.character, int) else ord(exc.character)
    return SpecError([Problem(mark.file, mark.line, mark.col, "",
                              f"unacceptable character U+{code:04X} in YAML text")])
