"""Registry of user layer classes: explicit registration only, no dotted-path imports."""

from __future__ import annotations

import inspect
from typing import Callable, TypeVar, overload

from ..errors import PluginError
from .schemafile import LAYER_PREFIX, load_schema

LAYERS: dict[str, type] = {}
_ORIGINS: dict[str, str] = {}

T = TypeVar("T", bound=type)


def _origin(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _register(cls: type, name: str | None) -> type:
    import keras

    if not isinstance(cls, type) or not issubclass(cls, keras.layers.Layer):
        raise PluginError(f"only keras.layers.Layer subclasses can be registered. Received: {cls!r}")
    key = name or cls.__name__
    if not key.isidentifier():
        raise PluginError(f"a layer name must be an identifier. Received: name={key!r}")
    if key in LAYERS and LAYERS[key] is not cls:
        raise PluginError(f"layer name {key!r} is already registered by {_ORIGINS[key]}; "
                          f"cannot register {_origin(cls)} under the same name")
    if LAYER_PREFIX + key in load_schema()["$defs"]:
        raise PluginError(f"{key!r} is a core Keras layer; register {_origin(cls)} under another name")
    keras.saving.register_keras_serializable(package="netspec_user", name=key)(cls)
    LAYERS[key] = cls
    _ORIGINS[key] = _origin(cls)
    return cls


@overload
def register_layer(cls: T) -> T: ...
@overload
def register_layer(*, name: str | None = None) -> Callable[[T], T]: ...


def register_layer(cls=None, *, name=None):
    """Register a ``keras.layers.Layer`` subclass so specs can name it as ``type:``.

    Use bare (``@netspec.register_layer``) or with a name (``@netspec.register_layer(name="PAM")``).
    The class is also registered for Keras serialization, so saved models load back.

    Raises:
        PluginError: not a Layer subclass, or the name is already taken by another class.
    """
    if cls is None:
        return lambda c: _register(c, name)
    return _register(cls, name)


def constructor_params(cls: type) -> tuple[list[tuple[inspect.Parameter, type]], bool]:
    """The named constructor arguments of a user layer class, each with the class that declares it.

    A constructor with ``**kwargs`` forwards them up the MRO (the usual Keras idiom:
    ``def __init__(self, units, scale=1.0, **kwargs): super().__init__(units, **kwargs)``), so the
    arguments of every base ``__init__`` they reach count too, down to (not including) the base
    ``keras.layers.Layer``, whose arguments a spec may pass as ``BASE_ARGS``.

    Returns:
        ``([(parameter, declaring class), ...], whether **kwargs reaches the base Layer)``.
    """
    import keras

    out: dict[str, tuple[inspect.Parameter, type]] = {}
    for klass in cls.__mro__:
        if klass is keras.layers.Layer or klass is object:
            return list(out.values()), True
        if "__init__" not in vars(klass):
            continue
        params = list(inspect.signature(vars(klass)["__init__"]).parameters.values())[1:]
        for p in params:
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in out:
                out[p.name] = (p, klass)
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return list(out.values()), False
    return list(out.values()), False
