"""Hugging Face hub access: list a repository, choose GGUF files, download them.

Everything goes through ``huggingface_hub`` (its ``HfApi``, URL builder, header
builder with the token and its shared HTTP session), so ``HF_TOKEN`` and
``HF_ENDPOINT`` work as everywhere else. The endpoint is read at call time.

Downloads are written to a partial file beside a small JSON note of what is being
fetched; an interrupted download resumes with an HTTP Range request, the SHA-256
is computed while the bytes arrive and checked against the hub's LFS hash.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mullama.engine.api import (
    Cancelled,
    EngineError,
    HubModel,
    InvalidRequest,
    ModelNotFound,
    PullProgress,
    QuantFile,
    Unauthorized,
    Unavailable,
)
from mullama.engine.refs import ModelRef, parse_ref

if TYPE_CHECKING:
    from huggingface_hub import HfApi, HfFileMetadata

    from mullama.config import Settings

DEFAULT_ENDPOINT = "https://huggingface.co"
CHUNK = 256 * 1024
PROGRESS_BYTES = 1 << 20
PROGRESS_SECONDS = 0.25
MAX_ATTEMPTS = 6
MAX_SEARCH_RESULTS = 100
SEARCH_TIMEOUT = 15.0  # seconds

_SHARD = re.compile(r"^(?P<prefix>.*)-(?P<index>\d{5})-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE)
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
KNOWN_QUANTS = (
    "IQ1_S",
    "IQ1_M",
    "IQ2_XXS",
    "IQ2_XS",
    "IQ2_S",
    "IQ2_M",
    "IQ3_XXS",
    "IQ3_XS",
    "IQ3_S",
    "IQ3_M",
    "IQ4_NL",
    "IQ4_XS",
    "Q2_K_S",
    "Q2_K_L",
    "Q2_K",
    "Q3_K_S",
    "Q3_K_M",
    "Q3_K_L",
    "Q3_K_XL",
    "Q3_K",
    "Q4_0_4_4",
    "Q4_0_4_8",
    "Q4_0_8_8",
    "Q4_0",
    "Q4_1",
    "Q4_K_S",
    "Q4_K_M",
    "Q4_K_L",
    "Q4_K_XL",
    "Q4_K",
    "Q5_0",
    "Q5_1",
    "Q5_K_S",
    "Q5_K_M",
    "Q5_K_L",
    "Q5_K",
    "Q6_K_L",
    "Q6_K",
    "Q8_0",
    "Q8_K_XL",
    "TQ1_0",
    "TQ2_0",
    "MXFP4",
    "BF16",
    "F16",
    "FP16",
    "F32",
    "FP32",
)

ProgressFn = Callable[[PullProgress], None]


class HubAccessError(Unauthorized):
    """The repository is gated or private and the request had no (valid) token."""


def hf_endpoint() -> str:
    """The hub endpoint, read now (not at import) so tests and users can change it."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


@dataclass
class RemoteFile:
    path: str
    size: int = 0
    sha256: str = ""  # LFS sha256 (hex) when the hub reports one
    blob_id: str = ""

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass
class Selection:
    """What a pull downloads: the weights (all shards, in order) and an optional projector."""

    repo: str
    revision: str  # as asked ("main" when not given)
    commit: str  # the commit it resolved to
    weights: list[RemoteFile]
    projector: RemoteFile | None = None
    quant: str = ""

    @property
    def files(self) -> list[RemoteFile]:
        return self.weights + ([self.projector] if self.projector else [])

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)


def quant_of(filename: str) -> str:
    """The quantization named in a file name (``…-q4_k_m.gguf`` -> ``Q4_K_M``), or ''."""
    for q in KNOWN_QUANTS:
        if _quant_matches(q, filename):
            return {"FP16": "F16", "FP32": "F32"}.get(q, q)
    return ""


def _quant_matches(quant: str, filename: str) -> bool:
    pattern = r"(?<![A-Za-z0-9])" + re.escape(quant) + r"(?![A-Za-z0-9]|_[A-Za-z0-9])"
    return re.search(pattern, filename, re.IGNORECASE) is not None


def hf_ref_checked(repo: str) -> ModelRef:
    """``owner/name`` (or ``hf:owner/name``) as a reference, or InvalidRequest."""
    text = repo.strip()
    bare = text.removeprefix("hf:")
    if bare.count("/") != 1 or ":" in bare or "@" in bare:
        raise InvalidRequest(f"a Hugging Face repository is owner/name, got {repo!r}", param="repo")
    return parse_ref(f"hf:{bare}")


IF_ANY = "if-any"  # a repository's projector, when it has one (pulls of a bare repository)


def is_projector_file(path: str) -> bool:
    name = path.rsplit("/", 1)[-1].lower()
    return "mmproj" in name or name.startswith("projector") or "-proj-" in name


def group_candidates(files: list[RemoteFile]) -> list[list[RemoteFile]]:
    """GGUF weight files grouped into candidates: one file, or all shards of a split model."""
    groups: dict[str, list[RemoteFile]] = {}
    order: list[str] = []
    for f in files:
        if not f.path.lower().endswith(".gguf") or is_projector_file(f.path):
            continue
        m = _SHARD.match(f.path)
        key = f"{m['prefix']}-of-{m['count']}".lower() if m else f.path
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(f)
    out = []
    for key in order:
        group = sorted(groups[key], key=lambda f: f.path)
        m = _SHARD.match(group[0].path)
        if m and len(group) != int(m["count"]):
            continue  # an incomplete split model is not a candidate
        out.append(group)
    return out


def choose_files(
    files: list[RemoteFile],
    *,
    repo: str,
    quant: str = "",
    file: str = "",
    quant_order: list[str] | tuple[str, ...] = (),
) -> tuple[list[RemoteFile], str]:
    """Pick the weights: the exact ``file`` (with its sibling shards), the ``quant``
    (case-insensitive), or the first quantization of ``quant_order`` the repo has."""
    candidates = group_candidates(files)
    if not candidates:
        raise ModelNotFound(f"no GGUF files in {repo}", param="model")
    available = ", ".join(g[0].path for g in candidates)
    if file:
        for exact in (True, False):
            for group in candidates:
                for f in group:
                    if (
                        (f.path == file)
                        if exact
                        else (f.path.lower() == file.lower() or f.name.lower() == file.lower())
                    ):
                        return group, quant_of(f.path)
        raise ModelNotFound(
            f"file {file!r} not found in {repo}; available: {available}",
            param="model",
            available=[g[0].path for g in candidates],
        )
    if quant:
        matches = [g for g in candidates if _quant_matches(quant, g[0].path)]
        if not matches:
            have = sorted({q for q in (quant_of(g[0].path) for g in candidates) if q})
            raise ModelNotFound(
                f"quantization {quant} not found in {repo}; available: "
                f"{', '.join(have) or available}",
                param="model",
                available=have,
            )
        return _best(matches), quant.upper()
    for q in quant_order:
        matches = [g for g in candidates if _quant_matches(q, g[0].path)]
        if matches:
            return _best(matches), q.upper()
    if len(candidates) == 1:
        return candidates[0], quant_of(candidates[0][0].path)
    raise ModelNotFound(
        f"cannot choose a GGUF in {repo}: none matches the quantization "
        f"preference; pick a file: {available}",
        param="model",
        available=[g[0].path for g in candidates],
    )


def _best(groups: list[list[RemoteFile]]) -> list[RemoteFile]:
    # prefer files at the top level, then a single file over shards, then the shortest name
    return min(groups, key=lambda g: (g[0].path.count("/"), len(g) > 1, len(g[0].path), g[0].path))


def choose_projector(files: list[RemoteFile], wanted: str, repo: str) -> RemoteFile | None:
    """The projector a pull takes: the file ``wanted`` names, the best one (F16 first) for
    ``auto`` (an error when there is none) or ``if-any`` (None when there is none)."""
    if wanted and wanted.lower() not in ("auto", IF_ANY):
        for f in files:
            if (
                f.path == wanted
                or f.path.lower() == wanted.lower()
                or f.name.lower() == wanted.lower()
            ):
                return f
        raise ModelNotFound(f"projector {wanted!r} not found in {repo}", param="model")
    projs = sorted(
        (f for f in files if f.path.lower().endswith(".gguf") and is_projector_file(f.path)),
        key=lambda f: ("f16" not in f.path.lower(), f.path),
    )
    if not projs:
        if wanted == IF_ANY:
            return None
        raise ModelNotFound(f"no vision projector (mmproj) in {repo}", param="model")
    return projs[0]


@dataclass
class DownloadNote:
    """What a partial file holds; a resume only continues the same remote content."""

    url: str
    size: int
    etag: str = ""
    sha256: str = ""

    def to_json(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def load(cls, path: Path) -> DownloadNote | None:
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None


@dataclass
class _Meter:
    progress: ProgressFn | None
    file: str
    digest: str
    total: int
    completed: int = 0
    started: float = field(default_factory=time.monotonic)
    start_bytes: int = 0
    last_time: float = 0.0
    last_bytes: int = 0

    def emit(self, status: str = "downloading", force: bool = False) -> None:
        if self.progress is None:
            return
        now = time.monotonic()
        if (
            not force
            and self.completed - self.last_bytes < PROGRESS_BYTES
            and now - self.last_time < PROGRESS_SECONDS
        ):
            return
        elapsed = now - self.started
        rate = (self.completed - self.start_bytes) / elapsed if elapsed > 0 else 0.0
        self.last_time, self.last_bytes = now, self.completed
        self.progress(
            PullProgress(
                status=status,
                file=self.file,
                digest=self.digest,
                completed=self.completed,
                total=self.total,
                rate=rate,
            )
        )


class Hub:
    """Talks to the hub for one store. Thread-safe; holds no connection of its own."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    # ------------------------------------------------------------ plumbing

    def token(self) -> str | None:
        return getattr(self.settings, "hf_token", "") or os.environ.get("HF_TOKEN") or None

    def api(self) -> HfApi:
        from huggingface_hub import HfApi

        return HfApi(endpoint=hf_endpoint(), token=self.token())

    @contextmanager
    def errors(self, repo: str, revision: str = "", file: str = "") -> Iterator[None]:
        """Turn huggingface_hub / HTTP errors into Engine API errors."""
        from huggingface_hub import errors as hf_errors

        try:
            yield
        except EngineError:
            raise
        except hf_errors.GatedRepoError:
            raise HubAccessError(
                f"{repo} is a gated repository: accept its terms on the Hugging Face website, "
                "then set HF_TOKEN (or hf_token in settings) to a token with access",
                param="model",
                repo=repo,
            ) from None
        except hf_errors.RevisionNotFoundError:
            raise ModelNotFound(
                f"revision {revision!r} not found in {repo}",
                param="model",
                repo=repo,
                revision=revision,
            ) from None
        except hf_errors.RemoteEntryNotFoundError:
            raise ModelNotFound(
                f"{file or 'file'} not found in {repo}", param="model", repo=repo
            ) from None
        except hf_errors.HfHubHTTPError as exc:
            status = getattr(getattr(exc, "response", None), "status_code", 0)
            if status in (401, 403):
                hint = "the token was refused" if self.token() else "no HF_TOKEN is set"
                raise HubAccessError(
                    f"cannot access {repo} (HTTP {status}): it is gated or private, or does not exist; "
                    f"{hint}. Set HF_TOKEN (or hf_token in settings) to a token with access",
                    param="model",
                    repo=repo,
                ) from None
            if isinstance(exc, hf_errors.RepositoryNotFoundError) or status == 404:
                raise ModelNotFound(
                    f"repository {repo} not found on {hf_endpoint()}", param="model", repo=repo
                ) from None
            raise EngineError(f"hub error for {repo}: {exc}".splitlines()[0]) from None
        except hf_errors.OfflineModeIsEnabled as exc:
            raise Unavailable(f"cannot pull {repo}: {exc}", hub=hf_endpoint()) from None
        except (ConnectionError, TimeoutError) as exc:
            raise Unavailable(
                f"cannot reach {hf_endpoint()} for {repo}: {exc}", hub=hf_endpoint()
            ) from None
        except OSError as exc:  # local disk trouble (full, permissions) says so
            from mullama.engine.store.files import DISK_FULL, full_disk  # (store imports hub)

            if exc.errno in DISK_FULL:
                raise full_disk(f"pull of {repo}", exc) from None
            raise EngineError(f"pull of {repo} failed writing to disk: {exc}") from None
        except Exception as exc:  # httpx errors are not OSError subclasses
            if type(exc).__module__.startswith(("httpx", "httpcore", "httpx2")):
                raise Unavailable(
                    f"cannot reach {hf_endpoint()} for {repo}: {exc}", hub=hf_endpoint()
                ) from None
            raise

    # ------------------------------------------------------------ listing

    def repo_files(self, repo: str, revision: str = "") -> tuple[str, list[RemoteFile]]:
        """(commit, files) of ``repo`` at ``revision`` (default branch when empty)."""
        api = self.api()
        rev = revision or "main"
        with self.errors(repo, rev):
            info = api.model_info(repo, revision=rev)
            commit = info.sha or rev
            files: list[RemoteFile] = []
            from huggingface_hub.hf_api import RepoFile

            for item in api.list_repo_tree(repo, revision=commit, recursive=True):
                if isinstance(item, RepoFile):
                    sha = (item.lfs.sha256 if item.lfs else "") or ""
                    files.append(
                        RemoteFile(
                            path=item.path,
                            size=item.size or 0,
                            sha256=sha.lower(),
                            blob_id=item.blob_id or "",
                        )
                    )
        return commit, files

    def search(self, query: str, limit: int = 20) -> list[HubModel]:
        """Repositories tagged ``gguf`` whose name matches ``query``, most downloaded first.

        The request ``HfApi.list_models(search=…, filter="gguf", sort="downloads", limit=…)``
        makes, sent once: list_models retries a failing hub for about 20 seconds, too long for
        someone waiting on a search."""
        from huggingface_hub.hf_api import ModelInfo as HfModelInfo
        from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

        query = query.strip()
        if not 1 <= limit <= MAX_SEARCH_RESULTS:
            raise InvalidRequest(
                f"limit must be between 1 and {MAX_SEARCH_RESULTS}, got {limit}", param="limit"
            )
        params: dict[str, str | int] = {"filter": "gguf", "sort": "downloads", "limit": limit}
        if query:
            params["search"] = query
        with self.search_errors(query):
            reply = get_session().get(
                f"{hf_endpoint()}/api/models",
                params=params,
                headers=build_hf_headers(token=self.token()),
                timeout=SEARCH_TIMEOUT,
            )
            hf_raise_for_status(reply)
            found = [HfModelInfo(**item) for item in reply.json()[:limit]]  # type: ignore[no-untyped-call]
        return [
            HubModel(
                repo=m.id,
                downloads=m.downloads or 0,
                likes=m.likes or 0,
                created_at=m.created_at.isoformat() if m.created_at else "",
                pipeline_tag=m.pipeline_tag or "",
                gated=bool(m.gated),
            )
            for m in found
        ]

    @contextmanager
    def search_errors(self, query: str) -> Iterator[None]:
        """A search's hub errors as Engine API errors, naming the hub."""
        from huggingface_hub import errors as hf_errors

        endpoint = hf_endpoint()
        what = f"search {endpoint} for {query!r}" if query else f"list the models of {endpoint}"
        try:
            yield
        except hf_errors.OfflineModeIsEnabled:
            raise Unavailable(
                f"cannot {what}: offline mode is on (HF_HUB_OFFLINE is set)", hub=endpoint
            ) from None
        except hf_errors.HfHubHTTPError as exc:
            status = getattr(getattr(exc, "response", None), "status_code", 0)
            raise Unavailable(
                f"cannot {what}: the hub answered HTTP {status}", hub=endpoint
            ) from None
        except (ConnectionError, TimeoutError) as exc:
            raise Unavailable(f"cannot {what}: {exc}", hub=endpoint) from None
        except Exception as exc:  # httpx errors are not OSError subclasses
            if type(exc).__module__.startswith(("httpx", "httpcore", "httpx2")):
                raise Unavailable(f"cannot {what}: {exc}", hub=endpoint) from None
            raise

    def quants(self, repo: str, quant_order: list[str] | tuple[str, ...] = ()) -> list[QuantFile]:
        """The GGUF weights ``repo`` offers, smallest first; ``preferred`` marks the one a
        pull of ``hf:repo`` would take under ``quant_order`` (the settings' by default)."""
        ref = hf_ref_checked(repo)
        _commit, files = self.repo_files(ref.repo)
        candidates = group_candidates(files)
        if not candidates:
            raise ModelNotFound(f"no GGUF files in {ref.repo}", param="repo", repo=ref.repo)
        try:
            picked, _ = choose_files(
                files, repo=ref.repo, quant_order=quant_order or self.settings.quant_order()
            )
            chosen = [f.path for f in picked]
        except ModelNotFound:
            chosen = []
        projector = choose_projector(files, IF_ANY, ref.repo)  # a pull takes it along
        extra = projector.size if projector is not None else 0
        out = []
        for group in candidates:
            quant = quant_of(group[0].path)
            same = [g for g in candidates if quant and _quant_matches(quant, g[0].path)]
            by_quant = quant and _best(same) is group
            out.append(
                QuantFile(
                    quant=quant,
                    ref=f"hf:{ref.repo}:{quant if by_quant else group[0].path}",
                    files=[f.path for f in group],
                    size=sum(f.size for f in group) + extra,
                    preferred=[f.path for f in group] == chosen,
                )
            )
        return sorted(out, key=lambda q: (q.size, q.ref))

    def select(
        self, ref: ModelRef, *, projector: str = "", quant_order: list[str] | tuple[str, ...] = ()
    ) -> Selection:
        if not ref.is_hf:
            raise InvalidRequest(f"{ref.raw!r} is not a Hugging Face reference")
        commit, files = self.repo_files(ref.repo, ref.revision)
        weights, quant = choose_files(
            files,
            repo=ref.repo,
            quant=ref.quant,
            file=ref.file,
            quant_order=quant_order or self.settings.quant_order(),
        )
        proj = choose_projector(files, projector, ref.repo) if projector else None
        return Selection(
            repo=ref.repo,
            revision=ref.revision or "main",
            commit=commit,
            weights=weights,
            projector=proj,
            quant=quant,
        )

    def file_url(self, repo: str, path: str, commit: str) -> str:
        from huggingface_hub import hf_hub_url

        return hf_hub_url(repo, path, revision=commit, endpoint=hf_endpoint())

    def file_metadata(self, repo: str, path: str, commit: str) -> HfFileMetadata:
        from huggingface_hub import get_hf_file_metadata

        with self.errors(repo, commit, path):
            return get_hf_file_metadata(
                self.file_url(repo, path, commit),
                token=self.token(),
                endpoint=hf_endpoint(),
                retry_on_errors=True,
            )

    # ------------------------------------------------------------ downloading

    def download(
        self,
        repo: str,
        commit: str,
        remote: RemoteFile,
        partial: Path,
        *,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
        total_override: int | None = None,
    ) -> str:
        """Download ``remote`` into ``partial`` (resuming it when possible) and return the
        SHA-256 hex of the complete file. The caller moves it into place.

        Raises Cancelled when ``cancel`` is set (the partial file stays for a later resume)
        and EngineError when the content does not match the hub's size or checksum
        (the partial file is removed).
        """
        from huggingface_hub.utils import build_hf_headers, get_session

        meta = self.file_metadata(repo, remote.path, commit)
        size = meta.size if meta.size is not None else remote.size
        linked = (meta.etag or "").strip('"').lower()
        expected_sha = remote.sha256 or (linked if _HEX64.match(linked) else "")
        url = self.file_url(repo, remote.path, commit)
        note_path = partial.with_name(partial.name + ".json")
        note = DownloadNote(url=url, size=size, etag=meta.etag or "", sha256=expected_sha)
        old = DownloadNote.load(note_path)
        if old is None or (old.url, old.size, old.etag, old.sha256) != (
            note.url,
            note.size,
            note.etag,
            note.sha256,
        ):
            _remove(partial)
            partial.parent.mkdir(parents=True, exist_ok=True)
            note_path.write_text(note.to_json())

        hasher = hashlib.sha256()
        have = 0
        if partial.exists():
            have = partial.stat().st_size
            if have > size:
                _remove(partial)
                have = 0
            else:
                with open(partial, "rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        hasher.update(block)
        meter = _Meter(
            progress,
            remote.path,
            f"sha256:{expected_sha}" if expected_sha else "",
            total=size,
            completed=have,
            start_bytes=have,
        )
        meter.emit(force=True)
        session = get_session()
        attempts = 0
        with self.errors(repo, commit, remote.path):
            while have < size or size == 0:
                if cancel is not None and cancel.is_set():
                    raise Cancelled(f"pull of {remote.path} cancelled")
                headers = build_hf_headers(token=self.token())
                headers["Accept-Encoding"] = "identity"
                if have:
                    headers["Range"] = f"bytes={have}-"
                try:
                    with session.stream("GET", url, headers=headers, timeout=60) as resp:
                        if resp.status_code == 416 and have:
                            # nothing more to send (or the note was stale): start over
                            _remove(partial)
                            hasher, have = hashlib.sha256(), 0
                            meter.completed = 0
                            continue
                        from huggingface_hub.utils import hf_raise_for_status

                        hf_raise_for_status(resp)
                        if have and resp.status_code == 200:
                            # the server ignored Range: restart from zero
                            _remove(partial)
                            hasher, have = hashlib.sha256(), 0
                            meter.completed = 0
                        mode = "ab" if have else "wb"
                        with open(partial, mode) as out:
                            for chunk in resp.iter_bytes(CHUNK):
                                if cancel is not None and cancel.is_set():
                                    out.flush()
                                    raise Cancelled(f"pull of {remote.path} cancelled")
                                out.write(chunk)
                                hasher.update(chunk)
                                have += len(chunk)
                                meter.completed = have
                                meter.emit()
                                if have > size > 0:
                                    break
                    if size == 0:
                        break
                    if have < size:
                        raise _ShortRead(f"connection closed at {have} of {size} bytes")
                except Cancelled:
                    raise
                except Exception as exc:
                    transient = (
                        isinstance(exc, _ShortRead)
                        or type(exc).__module__.startswith(("httpx", "httpcore", "httpx2"))
                        or isinstance(exc, (ConnectionError, TimeoutError))
                    )
                    if not transient:
                        raise
                    attempts += 1
                    if attempts >= MAX_ATTEMPTS:
                        raise Unavailable(
                            f"download of {remote.path} from {repo} kept failing "
                            f"({exc}); run the pull again to resume",
                            hub=hf_endpoint(),
                        ) from None
                    time.sleep(min(0.2 * 2**attempts, 5.0))
                    if partial.exists():
                        have = partial.stat().st_size
                        hasher = hashlib.sha256()
                        with open(partial, "rb") as f:
                            for block in iter(lambda: f.read(1 << 20), b""):
                                hasher.update(block)
                    continue
        meter.completed = have
        meter.emit(force=True)
        digest = hasher.hexdigest()
        if have != size:
            _remove(partial, note_path)
            raise EngineError(
                f"download of {remote.path} from {repo} has {have} bytes, "
                f"the hub says {size}; nothing was kept"
            )
        if expected_sha and digest != expected_sha:
            _remove(partial, note_path)
            raise EngineError(
                f"checksum mismatch for {remote.path} from {repo}: expected sha256:{expected_sha}, "
                f"got sha256:{digest}; the download was discarded",
                expected=f"sha256:{expected_sha}",
                actual=f"sha256:{digest}",
            )
        _remove(note_path)
        return digest


class _ShortRead(Exception):
    pass


def _remove(*paths: Path) -> None:
    for p in paths:
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass
