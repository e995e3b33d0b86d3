"""Locating the data files shipped with Mullama (``configs/``).

In a wheel the ``configs`` folder is installed inside the package
(``mullama/configs``); in a source checkout it sits at the repository's top level.
"""

from __future__ import annotations

from pathlib import Path

import mullama


def configs_dir() -> Path:
    """The folder holding ``models.toml`` and ``modelfiles/``."""
    packaged = Path(mullama.__file__).resolve().parent / "configs"
    if packaged.is_dir():
        return packaged
    return Path(mullama.__file__).resolve().parent.parent / "configs"


def models_toml() -> Path:
    """The bundled alias registry."""
    return configs_dir() / "models.toml"


def modelfiles_dir() -> Path:
    """Bundled Modelfiles for common families."""
    return configs_dir() / "modelfiles"
