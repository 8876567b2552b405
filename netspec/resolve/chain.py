"""``scope_chain``: a scope's names layered over the enclosing scope's, typed for read-only scopes."""

from __future__ import annotations

from collections import ChainMap
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    def scope_chain(first: dict[str, Any], *rest: Mapping[str, Any]) -> ChainMap[str, Any]:
        """``ChainMap(first, *rest)``: lookups go through the maps in order; writes go to ``first``."""
        ...
else:
    # typeshed types every map of a ChainMap as a MutableMapping, because a write to ``.parents``
    # would reach the second map. Scopes are only read (the resolver writes only into ``first``, a
    # fresh dict), so the enclosing ``Mapping`` scopes are fine. It IS ChainMap at run time: no
    # wrapper call on the resolver's per-node path.
    scope_chain = ChainMap
