"""Name -> class registries: a new cell type, dynamics, rule or task is one registered class."""

from __future__ import annotations

import difflib
from typing import Generic, TypeVar

T = TypeVar("T")


class UnknownName(KeyError):
    """Raised for a name that is not registered; the message lists the valid names."""

    def __init__(self, kind: str, name: str, valid: list[str]):
        self.kind, self.name, self.valid = kind, name, valid
        close = difflib.get_close_matches(name, valid, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        super().__init__(f"unknown {kind} '{name}' (valid: {', '.join(valid)}){hint}")

    def __str__(self) -> str:
        return str(self.args[0])


class Registry(Generic[T]):
    """A registry of classes (or callables) by name.

    Example::

        ACTIVATIONS = Registry("activation")

        @ACTIVATIONS.register("soft_relu")
        class SoftReLU: ...
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str):
        def decorator(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._entries[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownName(self.kind, name, self.names()) from None

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def names(self) -> list[str]:
        """The registered names, sorted (for messages that list them)."""
        return sorted(self._entries)

    def items(self) -> list[tuple[str, T]]:
        """(name, entry) pairs in the order of registration (the order the spec schema lists them in)."""
        return list(self._entries.items())
