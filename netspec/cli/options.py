"""What the commands share: their common arguments, the spec and budget they name, TensorFlow's start-up."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any, Sequence, overload

from ..budget import DEFAULT_BUDGET, Budget
from ..errors import NetspecError

if TYPE_CHECKING:
    from ..spec import Spec


class UsageError(Exception):
    """A command-line mistake (exit 2)."""


# -- arguments ------------------------------------------------------------------------------------


def spec_arguments(p: argparse.ArgumentParser, *, optional: bool = False, help: str = "the spec file (YAML)") -> None:
    """The arguments of every command that reads a spec."""
    p.add_argument("spec", nargs="?" if optional else None, help=help)
    p.add_argument("--set", action="append", metavar="NAME=VALUE", help="override a param (repeatable)")
    trust_argument(p)
    format_argument(p)


def trust_argument(p: argparse.ArgumentParser, help: str = "allow the spec's plugins: to run Python code") -> None:
    """``--trust-plugins``: run the ``plugins:`` of a spec file the command line names."""
    p.add_argument("--trust-plugins", action="store_true", help=help)


def format_argument(p: argparse.ArgumentParser) -> None:
    """``--format text|json``: how the reporter prints the result (see :mod:`.output`)."""
    p.add_argument("--format", choices=("text", "json"), default="text", help="output format")


def budget_arguments(p: argparse.ArgumentParser) -> None:
    """``--max-params`` and ``--max-activation-mb``, read by :func:`budget`."""
    p.add_argument("--max-params", type=int, metavar="N", help="parameter budget (default: from the machine's memory, at most 2,000,000,000)")
    p.add_argument("--max-activation-mb", type=int, metavar="MB",
                   help="budget for all node outputs of one sample, in MiB (default: a quarter of memory, at most 4096)")


def data_root_argument(p: argparse.ArgumentParser) -> None:
    """``--data-root DIR``: the one place outside the spec's directory its data paths may lead."""
    p.add_argument("--data-root", metavar="DIR", help="also allow the spec's data paths inside DIR (by default "
                   "they must stay inside the spec's directory)")


def plugins_argument(p: argparse.ArgumentParser, help: str) -> None:
    """``--plugins MODULE_OR_FILE[,...]``: user code the command line itself names (so it may run).

    One value per flag, comma-separated or repeated: a list of any length would swallow the positional
    argument after it (``--plugins layers.py model.keras`` read the model as a plugin).
    """
    p.add_argument("--plugins", action="extend", type=_names, metavar="MODULE_OR_FILE[,...]", default=[],
                   help=help + " (comma-separated, or repeat the option)")


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"an empty name in {text!r}")
    return names


KERAS_FILE_PLUGINS = ("import these modules or .py files first: the user layer classes a .keras file uses, or "
                      "a spec stored in an artifact (whose own plugins: never run)")
SPEC_FILE_TRUST = "allow the plugins: of a spec file named here to run Python code (never those of a stored spec)"


def load_named_plugins(args: argparse.Namespace) -> None:
    """Import the ``--plugins`` the command line names: naming them there is the user's own choice to run them
    (a spec's ``plugins:`` still needs ``--trust-plugins``; a ``.keras`` file never names code that runs)."""
    if getattr(args, "plugins", None):
        from ..schema.plugins import load_plugin_targets

        load_plugin_targets(args.plugins)


# -- what the arguments name ----------------------------------------------------------------------


def parse_sets(items: Sequence[str] | None) -> dict[str, Any]:
    """``--set name=value`` items as params (values read as YAML scalars or flow collections)."""
    from ..source.loader import load_yaml

    out: dict[str, Any] = {}
    for item in items or ():
        name, sep, text = item.partition("=")
        if not sep or not name.isidentifier():
            raise UsageError(f"--set expects name=value. Received: {item!r}")
        try:
            out[name] = load_yaml(text, "--set").data if text.strip() else None
        except NetspecError as e:
            raise UsageError(f"--set {name}: {e.message}") from None
    return out


def load_spec(args: argparse.Namespace) -> Spec:
    """The spec named on the command line, with ``--set``, ``--trust-plugins`` and ``--data-root`` applied."""
    from ..spec import load

    return load(args.spec, params=parse_sets(args.set), trust_plugins=args.trust_plugins,
                data_root=getattr(args, "data_root", None))


def budget(args: argparse.Namespace) -> Budget:
    """The parameter and activation budget of ``--max-params`` / ``--max-activation-mb``."""
    return Budget(
        max_params=args.max_params if args.max_params is not None else DEFAULT_BUDGET.max_params,
        max_activation_bytes=(args.max_activation_mb << 20) if args.max_activation_mb is not None
        else DEFAULT_BUDGET.max_activation_bytes,
    )


@overload
def output_path(args: argparse.Namespace, default: str, endings: tuple[str, ...], what: str) -> str: ...
@overload
def output_path(args: argparse.Namespace, default: None, endings: tuple[str, ...], what: str) -> str | None: ...


def output_path(args: argparse.Namespace, default: str | None, endings: tuple[str, ...], what: str) -> str | None:
    """``-o`` (or ``default``), refused unless it ends in one of ``endings`` and has no control characters.

    Raises:
        UsageError: the name has another ending or a control character (a newline in a file name).
        OutputError: it cannot be written there (:func:`netspec.build.saving.check_writable`).
    """
    out = args.output or default
    if out is not None and not out.endswith(endings):
        raise UsageError(f"-o must name {what} file. Received: {out!r}")
    if out is not None and any(ord(c) < 32 or ord(c) == 127 for c in out):
        raise UsageError(f"-o must not contain control characters (a file name with a newline). Received: {out!r}")
    if out is not None:  # before any work: a path that cannot be written is refused now, not after an export
        from ..build.saving import check_writable

        check_writable(out)
    return out


# -- TensorFlow -----------------------------------------------------------------------------------


def quiet_tensorflow() -> None:
    """Import Keras with TensorFlow's C++ start-up chatter kept out of netspec's output.

    TensorFlow logs through absl before any Python setting applies, so the import runs with
    file descriptor 2 pointed at a temporary file, which is replayed only if the import fails.
    ``NETSPEC_TF_LOGS=1`` keeps the logs.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if "keras" in sys.modules or os.environ.get("NETSPEC_TF_LOGS") == "1":
        return
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            import keras  # noqa: F401
            import tensorflow as tf

            tf.constant(0)  # device start-up logs too
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
