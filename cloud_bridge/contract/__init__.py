"""The edge <-> cloud contract as data: the AsyncAPI document and its JSON Schemas.

`validate(kind, message)` checks one payload; kinds are "evt.<type>", "reply", "status",
"state.compartments" and "cmd.<name>" (the schema file names without .json).
"""
from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource

CONTRACT_DIR = Path(__file__).parent
SCHEMA_DIR = CONTRACT_DIR / "schemas"
ASYNCAPI_FILE = CONTRACT_DIR / "asyncapi.yaml"
EXAMPLES_DIR = CONTRACT_DIR / "examples"


class ContractError(ValueError):
    """A payload does not match the contract; the message says where."""


@cache
def _registry() -> Registry:
    resources = []
    for path in SCHEMA_DIR.glob("*.json"):
        schema = json.loads(path.read_text())
        resources.append((schema["$id"], Resource.from_contents(schema)))
    return Registry().with_resources(resources)


def _is_integer(_checker: Any, instance: Any) -> bool:
    """JSON Schema calls 3.0 an integer; the contract does not (compartment 3.0 is refused)."""
    return isinstance(instance, int) and not isinstance(instance, bool)


StrictValidator = validators.extend(
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer),
)


@cache
def validator(kind: str) -> Draft202012Validator:
    path = SCHEMA_DIR / f"{kind}.json"
    if not path.is_file():
        raise ContractError(f"no schema for {kind!r} in the contract")
    return StrictValidator(json.loads(path.read_text()), registry=_registry())


def kinds() -> list[str]:
    return sorted(p.stem for p in SCHEMA_DIR.glob("*.json"))


def event_types() -> list[str]:
    return [kind.removeprefix("evt.") for kind in kinds() if kind.startswith("evt.")]


def command_names() -> list[str]:
    return [kind.removeprefix("cmd.") for kind in kinds() if kind.startswith("cmd.")]


def errors(kind: str, message: Any) -> list[str]:
    """Every mismatch, as 'path: reason' lines; empty when the message conforms."""
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
            for e in validator(kind).iter_errors(message)]


def validate(kind: str, message: Any) -> None:
    try:
        validator(kind).validate(message)
    except ValidationError as exc:
        where = "/".join(map(str, exc.absolute_path)) or "(root)"
        raise ContractError(f"{kind}: {where}: {exc.message}") from None


def kind_of(topic: str, message: dict[str, Any]) -> str:
    """The schema a message on `topic` must match (edge -> cloud topics, and cmd/...)."""
    if "/evt/" in topic:
        return f"evt.{topic.rsplit('/evt/', 1)[1]}"
    if "/cmd/" in topic:
        return f"cmd.{topic.rsplit('/cmd/', 1)[1]}"
    if topic.endswith("/status"):
        return "status"
    if topic.endswith("/state/compartments"):
        return "state.compartments"
    return "reply"
