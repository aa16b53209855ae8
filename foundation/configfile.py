"""The project's YAML configuration files, read into pydantic models with errors a person can act on.

Every problem names the file, the key path and the line: ``rules file limits.yaml: limits.dual_share.op
(line 20): Input should be 'max' or 'min'``. Values are never echoed into the message (a webhook may
carry a token), only where they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from foundation.errors import ConfigError

M = TypeVar("M", bound=BaseModel)

#: how many problems one error lists before it says how many more there are
SHOWN = 5


def read_yaml(path: Path | str, what: str) -> tuple[Any, yaml.Node | None]:
    """The decoded document and its node tree (for line numbers); a ConfigError when unreadable."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"cannot read the {what} {file}: {err.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"the {what} {file} is not UTF-8 text") from None
    try:
        return yaml.safe_load(text), yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as err:
        raise ConfigError(f"the {what} {file} is not valid YAML: {err}") from None


def line_of(node: yaml.Node | None, loc: Sequence[int | str]) -> int | None:
    """The 1-based line of the deepest node on `loc` (a pydantic error location) that the file has."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for step in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            if step == "[key]":
                return line  # the key itself is wrong: the line that holds it
            for key, value in node.value:
                if str(key.value) == str(step):
                    child = value
                    line = key.start_mark.line + 1
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and 0 <= step < len(node.value):
            child = node.value[step]
        if child is None:
            return line
        node = child
        line = node.start_mark.line + 1 if not isinstance(node, yaml.ScalarNode) else line
    return line


def _where(loc: Sequence[int | str]) -> str:
    out = ""
    for step in loc:
        if step == "[key]":
            continue
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out or "the top level"


#: pydantic's words for the mistakes people make in these files, in the files' own terms
_PLAIN = {
    "extra_forbidden": "unknown key",
    "missing": "missing",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "dict_type": "must be a mapping",
    "list_type": "must be a list",
}


def _message(error: Any) -> str:
    if error["type"] in _PLAIN:
        return _PLAIN[error["type"]]
    msg = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    return msg


def problems(err: ValidationError, node: yaml.Node | None = None, under: Sequence[str] = ()) -> list[str]:
    """One line per problem: the key path (below `under`), its line when known, and what is wrong."""
    out = []
    for error in err.errors(include_url=False, include_input=False):
        loc = (*under, *error["loc"])
        line = line_of(node, loc)
        at = f" (line {line})" if line is not None else ""
        out.append(f"{_where(loc)}{at}: {_message(error)}")
    return out


def validated(
    model: type[M],
    doc: Any,
    what: str,
    file: str = "",
    node: yaml.Node | None = None,
    under: Sequence[str] = (),
) -> M:
    """`doc` as a `model`, or a ConfigError naming the file, the key path and the line of each problem
    (`under`: where `doc` sits in its file, when it is one section of it)."""
    try:
        return model.model_validate(doc)
    except ValidationError as err:
        found = problems(err, node, under)
        head = f"{what} {file}" if file else what
        more = f" (and {len(found) - SHOWN} more)" if len(found) > SHOWN else ""
        raise ConfigError(f"{head}: " + "; ".join(found[:SHOWN]) + more) from None
