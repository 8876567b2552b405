"""One way an instance fails its schema: the issue type every schema check of netspec yields."""

from __future__ import annotations

from typing import Any, Callable


class Issue:
    """One way an instance fails its schema (immutable).

    Attributes:
        path: keys and indices from the document root to the offending value (or key).
        message: what was expected, ending in ``Received: name=value`` for a bad value.
        keyword: the failing JSON Schema keyword (``"type"``, ``"additionalProperties"``, ...).
        hint: a fix suggestion such as ``did you mean 'filters'?``. It may be given as a function,
            called the first time ``hint`` is read: a did-you-mean search costs far more than the
            issue, and only the issue that is reported needs one.
        at_key: True when the problem is the key at ``path`` itself (an unknown or invalid key).
    """

    __slots__ = ("path", "message", "keyword", "_hint", "at_key")

    path: tuple
    message: str
    keyword: str
    _hint: str | Callable[[], str | None] | None
    at_key: bool

    def __init__(self, path: tuple, message: str, keyword: str,
                 hint: str | Callable[[], str | None] | None = None, at_key: bool = False) -> None:
        for name, value in (("path", path), ("message", message), ("keyword", keyword), ("_hint", hint),
                            ("at_key", at_key)):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Issue is immutable; cannot set {name!r}")

    @property
    def hint(self) -> str | None:
        """The fix suggestion, computed on first read when it was given as a function."""
        hint = self._hint
        if callable(hint):
            hint = hint()
            object.__setattr__(self, "_hint", hint)
        return hint

    @property
    def lazy_hint(self) -> str | Callable[[], str | None] | None:
        """The hint as given (a function not yet called), to pass on to another issue unevaluated."""
        return self._hint

    def _key(self) -> tuple:
        return self.path, self.message, self.keyword, self.hint, self.at_key

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Issue) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (f"Issue(path={self.path!r}, message={self.message!r}, keyword={self.keyword!r}, "
                f"hint={self.hint!r}, at_key={self.at_key!r})")
