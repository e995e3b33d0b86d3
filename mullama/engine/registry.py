"""The alias registry: short names (``llama3.2:1b``) for Hugging Face GGUF repositories.

The shipped ``configs/models.toml`` is read first; the user's file
(``settings.registry_file``) adds entries or overrides them field by field.
:func:`add_alias` / :func:`remove_alias` edit the user's file with tomlkit, so
comments and layout survive.
"""

from __future__ import annotations

import dataclasses
import difflib
import threading
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mullama.engine.api import AliasInfo, InvalidRequest, ModelNotFound
from mullama.engine.refs import DEFAULT_TAG, ModelRef, hf_ref, split_name, validate_name

if TYPE_CHECKING:
    from tomlkit import TOMLDocument

# (mtime_ns, size) of the bundled and the user's file, None for one that is not there
FileStamp = tuple[tuple[int, int] | None, ...]

_FIELDS = (
    "repo",
    "default_quant",
    "file",
    "revision",
    "projector",
    "family",
    "description",
    "tags",
    "aliases",
    "template",
    "system",
    "stop",
    "params",
    "package",
    "capabilities",
    "hidden",
    "parameter_size",
    "license",
    "size",
)
_SOURCE_FIELDS = ("default_quant", "file", "revision", "projector", "package")


@dataclass
class RegistryEntry:
    name: str
    repo: str = ""
    default_quant: str = ""
    file: str = ""
    revision: str = ""
    projector: str = ""
    family: str = ""
    description: str = ""
    tags: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)
    template: str = ""
    system: str = ""
    stop: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    package: str = ""
    capabilities: dict[str, bool] = field(default_factory=dict)
    parameter_size: str = ""
    license: str = ""
    size: int = 0  # bytes of the default download, as the hub lists it (0: not known)
    origin: str = "bundled"  # bundled | user | both

    def hf_ref(self) -> ModelRef:
        """The Hugging Face reference this alias stands for."""
        if not self.repo:
            raise ModelNotFound(f"alias {self.name!r} has no Hugging Face repo", param="model")
        return hf_ref(
            self.repo,
            quant=self.default_quant if not self.file else "",
            file=self.file,
            revision=self.revision,
        )

    def defaults(self) -> dict[str, Any]:
        """Chat defaults this alias gives its model (empty values left out)."""
        out: dict[str, Any] = {}
        if self.template:
            out["template"] = self.template
        if self.system:
            out["system"] = self.system
        params = dict(self.params)
        if self.stop:
            params["stop"] = list(self.stop)
        if params:
            out["parameters"] = params
        if self.capabilities:
            out["capabilities"] = dict(self.capabilities)
        if self.license:
            out["license"] = self.license
        return out

    def derived_capabilities(self) -> dict[str, bool]:
        tags = {t.lower() for t in self.tags}
        caps: dict[str, bool] = {}
        if "embedding" in tags:
            caps.update(embedding=True, completion=False)
        if "rerank" in tags:
            caps.update(rerank=True, embedding=False, completion=False)
        if "vision" in tags or self.projector:
            caps["vision"] = True
        if "tools" in tags:
            caps["tools"] = True
        if "reasoning" in tags or "thinking" in tags:
            caps["thinking"] = True
        caps.update(self.capabilities)
        return caps

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def info(self) -> AliasInfo:
        """What the model library shows of this alias."""
        return AliasInfo(
            name=self.name,
            repo=self.repo,
            description=self.description,
            family=self.family,
            tags=list(self.tags),
            quant="" if self.file else self.default_quant,
            file=self.file,
            parameter_size=self.parameter_size,
            size=self.size,
            capabilities=self.derived_capabilities(),
            aliases=list(self.aliases),
            origin=self.origin,
        )


def _entry_from_table(name: str, table: dict[str, Any], origin: str) -> RegistryEntry:
    kwargs: dict[str, Any] = {}
    for key, value in table.items():
        if key not in _FIELDS:
            continue  # unknown keys are ignored so newer files still load
        if key in ("tags", "aliases", "stop"):
            value = [value] if isinstance(value, str) else [str(v) for v in value]
        elif key in ("params", "capabilities"):
            value = dict(value)
        elif key == "hidden":
            continue
        elif key == "default_quant":
            value = str(value).upper()
        elif key == "size":
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                continue  # only shown, never worth refusing the whole file for
        else:
            value = str(value)
        kwargs[key] = value
    return RegistryEntry(name=name, origin=origin, **kwargs)


def _canonical(name: str) -> str:
    model, tag = split_name(name.strip())
    return f"{model}:{tag}".lower()


def load_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise InvalidRequest(f"cannot read alias registry {path}: {exc}") from None


class Registry:
    """Bundled aliases merged with the user's. Cheap to build; reloads when a file changes."""

    def __init__(
        self, settings: Any = None, *, bundled: Path | None = None, user: Path | None = None
    ) -> None:
        from mullama import resources

        self.bundled_path = Path(bundled) if bundled else resources.models_toml()
        if user is not None:
            self.user_path: Path | None = Path(user)
        elif settings is not None:
            try:
                self.user_path = Path(settings.registry_file)
            except TypeError:  # config_dir given as a str
                self.user_path = Path(settings.config_dir) / "models.toml"
        else:
            self.user_path = None
        self._lock = threading.RLock()
        self._stamp: FileStamp = ()
        self._entries: dict[str, RegistryEntry] = {}
        self._index: dict[str, str] = {}

    # ------------------------------------------------------------ loading

    def _file_stamp(self) -> FileStamp:
        stamp: list[tuple[int, int] | None] = []
        for p in (self.bundled_path, self.user_path):
            try:
                st = p.stat() if p else None
                stamp.append((st.st_mtime_ns, st.st_size) if st else None)
            except FileNotFoundError:
                stamp.append(None)
        return tuple(stamp)

    def _load(self) -> None:
        with self._lock:
            stamp = self._file_stamp()
            if stamp == self._stamp and self._entries:
                return
            bundled = load_toml(self.bundled_path).get("models", {})
            user = load_toml(self.user_path).get("models", {}) if self.user_path else {}
            merged: dict[str, tuple[dict[str, Any], str]] = {}
            for name, table in bundled.items():
                merged[_canonical(name)] = (dict(table) | {"__name": name}, "bundled")
            for name, table in user.items():
                key = _canonical(name)
                if key in merged:
                    base, _ = merged[key]
                    if "repo" in table and table["repo"] != base.get("repo"):
                        base = {k: v for k, v in base.items() if k not in _SOURCE_FIELDS}
                    merged[key] = (base | dict(table), "both")
                else:
                    merged[key] = (dict(table) | {"__name": name}, "user")
            entries: dict[str, RegistryEntry] = {}
            index: dict[str, str] = {}
            for key, (table, origin) in merged.items():
                if table.get("hidden"):
                    continue
                entry = _entry_from_table(str(table.get("__name", key)), table, origin)
                entries[key] = entry
                index[key] = key
            for key, entry in entries.items():
                for alias in entry.aliases:
                    index.setdefault(_canonical(alias), key)
            self._entries, self._index, self._stamp = entries, index, stamp

    # ------------------------------------------------------------ lookup

    def entries(self) -> list[RegistryEntry]:
        self._load()
        return sorted(self._entries.values(), key=lambda e: e.name)

    def names(self) -> list[str]:
        return [e.name for e in self.entries()]

    def find(self, name: str) -> RegistryEntry | None:
        """The entry for ``name`` (or one of its aliases), or None."""
        self._load()
        key = self._index.get(_canonical(name))
        return self._entries.get(key) if key else None

    def get(self, name: str) -> RegistryEntry:
        """Like :meth:`find` but raises ModelNotFound with suggestions."""
        entry = self.find(name)
        if entry is None:
            raise self.not_found(name)
        return entry

    def suggest(self, name: str, extra: list[str] | tuple[str, ...] = (), n: int = 5) -> list[str]:
        """Close matches among ``extra`` names (the local models) and aliases, for 'did you mean'.

        Local names come first: a typo is more likely of a model the user already has.
        """
        self._load()
        pool: dict[str, str] = {}
        for entry in self._entries.values():
            pool[entry.name.lower()] = entry.name
            for alias in entry.aliases:
                if not alias.lower().endswith(":" + DEFAULT_TAG):
                    pool.setdefault(alias.lower(), alias)
        for e in extra:
            pool.setdefault(e.lower(), e)
        query = name.strip().lower()
        model, tag = split_name(query)
        found = [pool[m] for m in difflib.get_close_matches(query, list(pool), n=n, cutoff=0.6)]
        if tag == DEFAULT_TAG or ":" not in query:
            # a bare family name: offer its tags
            family = [v for k, v in pool.items() if split_name(k)[0] == model]
            found = family + [f for f in found if f not in family]
        if len(found) < n:
            bases = {split_name(k)[0]: k for k in pool}
            for m in difflib.get_close_matches(model, list(bases), n=n, cutoff=0.6):
                fam = sorted(v for k, v in pool.items() if split_name(k)[0] == m)
                for f in fam:
                    if f not in found:
                        found.append(f)
        local = {e.lower() for e in extra}
        found.sort(key=lambda f: f.lower() not in local)  # stable: closeness order otherwise
        return found[:n]

    def not_found(
        self, name: str, extra: list[str] | tuple[str, ...] = (), what: str = "model"
    ) -> ModelNotFound:
        suggestions = self.suggest(name, extra)
        model, _tag = split_name(name.strip())
        message = f"{what} {name!r} not found"
        family = [s for s in suggestions if split_name(s)[0].lower() == model.lower()]
        if ":" not in name and family:
            message = f"{what} {name!r} is ambiguous: pick a tag"
        if suggestions:
            message += "; did you mean " + ", ".join(repr(s) for s in suggestions) + "?"
        return ModelNotFound(message, param="model", suggestions=suggestions)

    # ------------------------------------------------------------ editing the user's file

    def _require_user_path(self) -> Path:
        if self.user_path is None:
            raise InvalidRequest("no user registry file configured")
        return self.user_path

    def add_alias(
        self,
        name: str,
        repo: str,
        *,
        quant: str = "",
        file: str = "",
        description: str = "",
        **fields: Any,
    ) -> RegistryEntry:
        """Add or replace ``name`` in the user's registry file, keeping its comments."""
        import tomlkit

        canonical = validate_name(name)
        if not repo or repo.count("/") != 1:
            raise InvalidRequest(f"repo must be owner/name, got {repo!r}", param="repo")
        unknown = set(fields) - set(_FIELDS)
        if unknown:
            raise InvalidRequest(f"unknown alias field(s): {', '.join(sorted(unknown))}")
        path = self._require_user_path()
        with self._lock:
            doc = _read_doc(path)
            models = doc.setdefault("models", tomlkit.table(is_super_table=True))
            for existing in list(models.keys()):
                if _canonical(existing) == _canonical(canonical) and existing != canonical:
                    del models[existing]
            table = tomlkit.table()
            table["repo"] = repo
            if file:
                table["file"] = file
            if quant:
                table["default_quant"] = quant.upper()
            if description:
                table["description"] = description
            for key, value in fields.items():
                if value not in (None, "", [], {}):
                    table[key] = value
            models[canonical] = table
            _write_doc(path, doc)
            self._stamp = ()
        return self.get(canonical)

    def remove_alias(self, name: str) -> None:
        """Remove ``name`` from the user's file; a bundled alias is hidden instead."""
        import tomlkit

        path = self._require_user_path()
        entry = self.find(name)
        with self._lock:
            doc = _read_doc(path)
            models = doc.get("models")
            removed = False
            if models is not None:
                for existing in list(models.keys()):
                    if (
                        entry is not None and _canonical(existing) == _canonical(entry.name)
                    ) or _canonical(existing) == _canonical(name):
                        del models[existing]
                        removed = True
            bundled = load_toml(self.bundled_path).get("models", {})
            target = entry.name if entry else name
            if any(_canonical(k) == _canonical(target) for k in bundled):
                models = doc.setdefault("models", tomlkit.table(is_super_table=True))
                hidden = tomlkit.table()
                hidden["hidden"] = True
                models[target] = hidden
                removed = True
            if not removed:
                raise self.not_found(name, what="alias")
            _write_doc(path, doc)
            self._stamp = ()


def _read_doc(path: Path) -> TOMLDocument:
    import tomlkit

    try:
        return tomlkit.parse(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        doc = tomlkit.document()
        doc.add(tomlkit.comment("Mullama model aliases (added to / overriding the bundled list)"))
        return doc
    except Exception as exc:  # tomlkit raises its own ParseError subclasses
        raise InvalidRequest(f"cannot parse {path}: {exc}") from None


def _write_doc(path: Path, doc: TOMLDocument) -> None:
    import tomlkit

    from mullama.engine.store.files import atomic_write

    atomic_write(path, tomlkit.dumps(doc).encode("utf-8"))
