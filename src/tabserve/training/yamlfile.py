"""YAML loading that remembers where every key and item sits, for `file:line: key:` errors.

The document is composed into nodes (which carry marks) and turned into plain Python values
with a table from each path — ("split", "test_size"), ("models", 0, "params") — to its line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from tabserve.errors import UserError

Loc = tuple[int | str, ...]


class LocatedYaml:
    """Plain data from a YAML file plus the 1-based line of each key path."""

    def __init__(self, path: Path, data: Any, lines: dict[Loc, int]) -> None:
        self.path = path
        self.data = data
        self.lines = lines

    def line_of(self, loc: Loc) -> int:
        """The line of the deepest known prefix of ``loc`` (a missing key → its parent)."""
        for end in range(len(loc), -1, -1):
            if loc[:end] in self.lines:
                return self.lines[loc[:end]]
        return 1

    def error(self, loc: Loc, message: str) -> UserError:
        key = ".".join(str(p) for p in loc) if loc else "(document)"
        return UserError(f"{self.path}:{self.line_of(loc)}: {key}: {message}")


def _to_python(node: yaml.Node, loc: Loc, lines: dict[Loc, int], path: Path) -> Any:
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            child = (*loc, key if isinstance(key, str | int) else str(key))
            if key in out:
                where = f"{path}:{key_node.start_mark.line + 1}"
                raise UserError(f"{where}: {'.'.join(map(str, child))}: duplicate key")
            lines[child] = key_node.start_mark.line + 1
            out[key] = _to_python(value_node, child, lines, path)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(item, (*loc, i), lines, path) for i, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    """A scalar with YAML's own type rules (ints, floats, bools, null) from the safe loader."""
    if node.tag == "tag:yaml.org,2002:str":
        return node.value
    return yaml.safe_load(yaml.serialize(node))


def load_located(path: Path) -> LocatedYaml:
    """Parse ``path``; syntax errors become `file:line: (document): ...` UserErrors."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read: {exc}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 1
        raise UserError(f"{path}:{line}: (document): invalid YAML: {exc.problem}") from None
    lines: dict[Loc, int] = {}
    data = {} if node is None else _to_python(node, (), lines, path)
    return LocatedYaml(path, data, lines)


def _message(error: ErrorDetails) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    msg = str(error["msg"]).removeprefix("Value error, ")
    return msg[0].lower() + msg[1:] if msg else kind


def validate(doc: LocatedYaml, model: type[BaseModel]) -> Any:
    """Validate ``doc.data`` with ``model``; the first error becomes a located UserError."""
    if not isinstance(doc.data, dict):
        raise doc.error((), "expected a mapping of keys to values at the top level")
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        loc = tuple(
            p for p in first["loc"] if not (isinstance(p, str) and p.startswith("function-"))
        )
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise doc.error(loc, _message(first) + more) from None
