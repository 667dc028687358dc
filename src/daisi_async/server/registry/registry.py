"""The Daisies a server knows, looked up by id or by name (:class:`Registry`).

Example:
    >>> registry = Registry(load_daisies(Path("examples/daisies")))  # doctest: +SKIP
    >>> registry.find("Add Two Numbers").endpoints["compute"].to_json()  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ..._values import is_uuid
from .spec import DaisiSpec

__all__ = ["Registry"]


class Registry:
    """The Daisies a server knows, looked up by id or by name.

    Lookups are case-insensitive. ``find`` accepts an id, ``owner/name`` or a plain
    name; a plain name shared by several owners resolves to ``default_owner``'s
    Daisi if there is one, else to the first in ``all()`` order. A plain name that
    matches no Daisi name is also tried against folder names (``add-two-numbers``).

    Example:
        >>> registry = Registry(load_daisies(Path("examples/daisies")))  # doctest: +SKIP
        >>> registry.find("exampledaisies/add two numbers").name  # doctest: +SKIP
        'Add Two Numbers'
    """

    def __init__(self, specs: Iterable[DaisiSpec], *, default_owner: str = "local") -> None:
        self._specs = list(specs)
        self.default_owner = default_owner
        self._by_id: dict[str, DaisiSpec] = {}
        self._by_full_name: dict[str, DaisiSpec] = {}
        for spec in self._specs:
            self._by_id.setdefault(spec.id.lower(), spec)
            self._by_full_name.setdefault(spec.full_name.lower(), spec)

    def all(self) -> list[DaisiSpec]:
        """Every Daisi, broken ones included, in load order (by name)."""
        return list(self._specs)

    def get(self, daisi_id: str) -> DaisiSpec | None:
        """The Daisi with this id (a UUID string, any case), or None."""
        found = self._by_id.get(daisi_id)  # as the server itself spells it: the usual case
        return found if found is not None else self._by_id.get(daisi_id.strip().lower())

    def find(self, name_or_id: str) -> DaisiSpec | None:
        """The Daisi called ``name_or_id`` (an id, ``owner/name`` or ``name``), or None."""
        text = name_or_id.strip()
        if is_uuid(text):
            return self.get(text)
        key = text.lower()
        if "/" in key:
            return self._by_full_name.get(key)
        for candidates in (
            [s for s in self._specs if s.name.lower() == key],
            [s for s in self._specs if s.path.name.lower() == key],
        ):
            if candidates:
                for spec in candidates:
                    if spec.owner.lower() == self.default_owner.lower():
                        return spec
                return candidates[0]
        return None

    def __len__(self) -> int:
        return len(self._specs)

    def __iter__(self) -> Iterator[DaisiSpec]:
        return iter(self._specs)
