"""Plain frozen classes for the launch path: ``dataclasses`` imports ``inspect``, which alone
costs more launch latency than everything else ``unroot run`` does."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Self


class Frozen:
    """Equality, hashing, repr and immutability from ``__slots__``, like a frozen dataclass."""

    __slots__: tuple[str, ...] = ()

    def _init(self, **fields: object) -> None:
        for key, value in fields.items():
            object.__setattr__(self, key, value)

    def _fields(self) -> tuple[object, ...]:
        return tuple(getattr(self, key) for key in self.__slots__)

    def __setattr__(self, key: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen")

    def __delattr__(self, key: str) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self) or not isinstance(other, Frozen):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._fields()))

    def __repr__(self) -> str:
        inner = ", ".join(f"{key}={getattr(self, key)!r}" for key in self.__slots__)
        return f"{type(self).__name__}({inner})"

    def replace(self, **changes: object) -> Self:
        """A copy with some fields changed (dataclasses.replace)."""
        fields = {key: getattr(self, key) for key in self.__slots__}
        unknown = set(changes) - set(fields)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field {sorted(unknown)[0]!r}")
        fields.update(changes)
        return type(self)(**fields)
