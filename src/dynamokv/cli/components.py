"""Optional parts of the installation the command line loads lazily (the server, the simulator).

Owns: ``MissingComponent`` and ``load``/``attribute``: import a module only when a command needs
it, so ``--help`` stays fast and a missing part fails only the commands that use it.
May import: stdlib only.
"""

from __future__ import annotations

import importlib
from typing import Any


class MissingComponent(Exception):
    """A module the command needs is not part of this installation (yet)."""


def load(module: str, what: str) -> Any:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        # Only a missing *target* means "not installed"; a missing import inside it is a bug
        # that must surface with its own traceback.
        if e.name and (module == e.name or module.startswith(e.name + ".")):
            raise MissingComponent(
                f"{what} ({module}) is not available in this installation"
            ) from e
        raise


def attribute(module: str, name: str, what: str) -> Any:
    value = getattr(load(module, what), name, None)
    if value is None:
        raise MissingComponent(f"{what} ({module}.{name}) is not available in this installation")
    return value
