"""Store manifests: one JSON file per model under ``manifests/``, declared with msgspec.

The JSON shape is the one Mullama has always written (keys sorted, two-space indent):
fields a kind of manifest never had are ``UNSET`` and left out, so a manifest decodes and
encodes back to the same document, and manifests written by earlier versions still load.
Decoding validates: a manifest of the wrong shape is refused with the field named
(``Expected `int`, got `str` - at `$.weights[0].size```).

A model exists exactly when its manifest exists; manifests are written to a temp file and
renamed (:func:`~mullama.engine.store.files.atomic_write`), never half-written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import msgspec
from msgspec import UNSET, UnsetType

from mullama.engine.api import ModelLoadError
from mullama.engine.refs import name_to_filename

from .files import atomic_write

SCHEMA = 1


class Item(msgspec.Struct, kw_only=True):
    """A file a model uses: a stored blob (by digest), or with ``path`` a file used in place
    (a model created ``FROM ./file.gguf``; the store never copies or deletes it)."""

    digest: str
    size: int = 0
    file: str = ""  # the name in the repository (split GGUFs are linked back to it)
    path: str | UnsetType = UNSET

    @property
    def stored(self) -> bool:
        """True for a blob in the store, False for a file used from where it is."""
        return self.path is UNSET


class HubSource(msgspec.Struct, kw_only=True):
    """Where a pulled model came from on a Hugging Face hub."""

    endpoint: str = ""
    repo: str = ""
    revision: str = ""
    commit: str = ""
    quant: str = ""


class PackageSource(msgspec.Struct, kw_only=True):
    """A model written by a Python package (the bundled test model)."""

    name: str
    version: str = ""


class RegistryInfo(msgspec.Struct, kw_only=True):
    """What the alias registry said about a pulled model (empty for hf: and path models)."""

    family: str | UnsetType = UNSET
    description: str | UnsetType = UNSET
    tags: list[str] | UnsetType = UNSET
    capabilities: dict[str, bool] | UnsetType = UNSET


class Defaults(msgspec.Struct, kw_only=True):
    """The chat defaults of an alias (RegistryEntry.defaults()), kept with a pulled model."""

    parameters: dict[str, Any] | UnsetType = UNSET
    system: str | UnsetType = UNSET
    template: str | UnsetType = UNSET
    license: str | UnsetType = UNSET
    capabilities: dict[str, bool] | UnsetType = UNSET

    def given(self) -> bool:
        """True when the alias gives any default at all."""
        return any(getattr(self, f) is not UNSET for f in self.__struct_fields__)


class Manifest(msgspec.Struct, kw_only=True):
    """One model. ``kind`` is ``pulled`` (``hub`` or ``package`` say from where, ``defaults``
    what its alias gives it) or ``created`` (``modelfile`` is the merged ModelfileSpec as a
    dict, ``modelfile_text`` the text it was created from)."""

    schema: int = SCHEMA
    name: str
    kind: str = "pulled"
    source: str = ""
    weights: Annotated[list[Item], msgspec.Meta(min_length=1)]  # the first shard first
    projector: Item | None = None
    registry: RegistryInfo = msgspec.field(default_factory=RegistryInfo)
    gguf: dict[str, Any] = {}  # gguf_summary() of the weights
    digest: str = ""  # of the first weights file
    size: int = 0
    modified_at: str = ""
    hub: HubSource | UnsetType = UNSET
    package: PackageSource | UnsetType = UNSET
    defaults: Defaults | UnsetType = UNSET
    modelfile: dict[str, Any] | UnsetType = UNSET
    modelfile_text: str | UnsetType = UNSET
    copied_from: str | UnsetType = UNSET

    def items(self) -> list[Item]:
        """The weights and the projector."""
        return self.weights + ([self.projector] if self.projector is not None else [])


_decoder = msgspec.json.Decoder(Manifest)


def decode(data: bytes) -> Manifest:
    """A manifest from its JSON; msgspec.ValidationError (naming the field) or DecodeError."""
    return _decoder.decode(data)


def encode(manifest: Manifest) -> bytes:
    return msgspec.json.format(msgspec.json.encode(manifest, order="sorted"), indent=2)


class Manifests:
    """The ``manifests/`` folder: one ``<percent-encoded name>.json`` per model."""

    def __init__(self, folder: Path):
        self.dir = folder
        folder.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        return self.dir / (name_to_filename(key) + ".json")

    def read(self, key: str) -> Manifest | None:
        """The manifest of ``key``, None when there is none; ModelLoadError when unreadable."""
        try:
            return decode(self.path(key).read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, msgspec.DecodeError) as exc:  # ValidationError is a DecodeError
            raise ModelLoadError(f"manifest of {key} is unreadable: {exc}") from None

    def write(self, manifest: Manifest) -> None:
        atomic_write(self.path(manifest.name), encode(manifest))

    def remove(self, key: str) -> None:
        self.path(key).unlink()

    def all(self) -> list[Manifest]:
        """Every readable manifest (temp files of writes in progress and broken ones skipped)."""
        out = []
        for p in sorted(self.dir.glob("*.json")):
            if p.name.startswith("."):
                continue
            try:
                manifest = decode(p.read_bytes())
            except (OSError, msgspec.DecodeError):
                continue
            if manifest.name:
                out.append(manifest)
        return out
