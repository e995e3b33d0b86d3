"""A local stand-in for the Hugging Face hub, for tests that pull models.

It is a real HTTP server (threaded ``http.server`` on 127.0.0.1, a free port) that
answers the endpoints ``huggingface_hub`` calls, reached through ``HF_ENDPOINT``:

* ``GET /api/models?search=…&filter=gguf&sort=downloads&limit=…``: the search ``list_models``
  makes (repositories whose id contains the text, with the filter tag, most downloaded first);
* ``GET /api/models/{repo}/revision/{rev}`` (and ``/api/models/{repo}``): model info with
  ``sha`` and ``siblings``;
* ``GET /api/models/{repo}/tree/{rev}[/{path}]?recursive=…``: the file listing with LFS
  sha256/size;
* ``HEAD|GET /{repo}/resolve/{rev}/{path}``: ``X-Repo-Commit``, ``ETag``, ``X-Linked-Etag``,
  ``X-Linked-Size``; LFS files redirect to ``/cdn/…`` like the real hub's CDN, which honours
  ``Range`` (206 + ``Content-Range``);
* gated (403 ``X-Error-Code: GatedRepo``) and private (401 ``RepoNotFound``) repositories
  unless the request carries an accepted ``Authorization: Bearer`` token.

Test helpers: :func:`make_gguf` writes small valid GGUF files; :meth:`FakeHub.cut_next`
cuts the next transfer of a file midway; :meth:`FakeHub.hold` keeps a transfer waiting until
released; :meth:`FakeHub.advertise_wrong_checksum` makes
the hub report a sha256 that does not match the content; :attr:`FakeHub.search_status` makes
searches answer that HTTP error.

Use the ``fake_hub`` fixture (it sets ``HF_ENDPOINT`` for the test), ``store_settings``
(Settings with every directory in a temp folder) and ``model_store``.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import pytest

from mullama.engine.gguf_info import write_gguf

# ------------------------------------------------------------------ synthetic GGUF files


def make_gguf_bytes(
    *,
    arch: str = "llama",
    name: str = "tiny",
    file_type: int = 15,
    context_length: int = 2048,
    embedding_length: int = 64,
    chat_template: str | None = None,
    extra: dict[str, Any] | None = None,
    tensors: list[tuple[str, tuple[int, ...]]] | None = None,
    padding: int = 0,
    seed: str = "",
) -> bytes:
    """A small valid GGUF (v3) with real-looking metadata, as bytes.

    ``padding`` appends that many pseudo-random bytes (derived from ``seed``/``name``) so
    files can be made large enough to test progress and resume, and distinct per seed.
    """
    import tempfile

    meta: dict[str, Any] = {
        "general.architecture": arch,
        "general.name": name,
        "general.file_type": file_type,
        f"{arch}.context_length": context_length,
        f"{arch}.embedding_length": embedding_length,
        f"{arch}.block_count": 2,
        f"{arch}.attention.head_count": 4,
        "tokenizer.ggml.model": "gpt2",
        "tokenizer.ggml.tokens": [f"t{i}" for i in range(100)],  # long: summarised by readers
    }
    if chat_template is not None:
        meta["tokenizer.chat_template"] = chat_template
    meta.update(extra or {})
    tensors = (
        tensors
        if tensors is not None
        else [
            ("token_embd.weight", (embedding_length, 32)),
            ("output_norm.weight", (embedding_length,)),
        ]
    )
    pad = _pseudo_random(padding, f"{seed}|{name}") if padding else b""
    with tempfile.TemporaryDirectory() as tmp:
        path = write_gguf(Path(tmp) / "m.gguf", meta, tensors, padding=pad)
        return path.read_bytes()


def make_gguf(path: str | Path, **kwargs) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(make_gguf_bytes(**kwargs))
    return path


def _pseudo_random(n: int, seed: str) -> bytes:
    out = bytearray()
    block = hashlib.sha256(seed.encode()).digest()
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block * 32  # 1 KiB per step: fast enough, distinct per seed
    return bytes(out[:n])


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------ the hub's data


@dataclass
class FakeRepo:
    repo_id: str
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)
    gated: bool = False
    private: bool = False
    tokens: set[str] = field(default_factory=set)
    lfs_threshold: int = 1024  # files at least this big are LFS files, like the real hub (10 MB)
    downloads: int = 0
    likes: int = 0
    tags: list[str] = field(default_factory=lambda: ["gguf"])
    pipeline_tag: str = "text-generation"

    def commit(self, files: dict[str, bytes], branch: str = "main", *, keep: bool = False) -> str:
        """Add a commit on ``branch`` with ``files`` (merged over the branch's files when
        ``keep``); returns its 40-hex sha."""
        base = dict(self.commits.get(self.refs.get(branch, ""), {})) if keep else {}
        base.update(files)
        h = hashlib.sha1()
        h.update(self.repo_id.encode())
        h.update(str(len(self.commits)).encode())
        for path in sorted(base):
            h.update(path.encode() + b"\0" + hashlib.sha256(base[path]).digest())
        sha = h.hexdigest()
        self.commits[sha] = base
        self.refs[branch] = sha
        return sha

    def resolve_revision(self, rev: str) -> str | None:
        if rev in self.refs:
            return self.refs[rev]
        if rev in self.commits:
            return rev
        if len(rev) >= 7:
            found = [sha for sha in self.commits if sha.startswith(rev)]
            if len(found) == 1:
                return found[0]
        return None


class FakeHub:
    """The server and its repositories. Thread-safe enough for tests."""

    def __init__(self) -> None:
        self.repos: dict[str, FakeRepo] = {}
        self.requests: list[dict[str, Any]] = []
        self._cuts: dict[str, int] = {}
        self._wrong: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self.redirect_lfs = True
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None
        self.delay_per_chunk = 0.0  # seconds slept per 64 KiB sent (to test cancellation)
        self.search_status = 0  # when set, searches answer this HTTP status
        self._holds: dict[str, threading.Event] = {}
        self._hold_after: dict[str, int] = {}

    # ---------------------------------------------------------------- setup

    def add_repo(
        self,
        repo_id: str,
        files: dict[str, bytes],
        *,
        gated: bool = False,
        private: bool = False,
        tokens: set[str] | None = None,
        downloads: int = 0,
        likes: int = 0,
    ) -> FakeRepo:
        repo = FakeRepo(
            repo_id,
            gated=gated,
            private=private,
            tokens=set(tokens or ()),
            downloads=downloads,
            likes=likes,
        )
        repo.commit(files)
        self.repos[repo_id.lower()] = repo
        return repo

    def repo(self, repo_id: str) -> FakeRepo:
        return self.repos[repo_id.lower()]

    def cut_next(self, path: str, after_bytes: int) -> None:
        """The next content transfer of ``path`` closes the connection after ``after_bytes``."""
        with self._lock:
            self._cuts[path] = after_bytes

    def hold(self, path: str, after_bytes: int = 0) -> threading.Event:
        """Content transfers of ``path`` send their headers and ``after_bytes`` of the body,
        then wait until the returned event is set (so a test knows a download is under way,
        whatever the machine's speed)."""
        with self._lock:
            self._hold_after[path] = after_bytes
            return self._holds.setdefault(path, threading.Event())

    def release_all(self) -> None:
        with self._lock:
            for gate in self._holds.values():
                gate.set()

    def advertise_wrong_checksum(self, repo_id: str, path: str) -> None:
        """Report a sha256 for ``path`` (tree listing and X-Linked-Etag) that does not match."""
        self._wrong.add((repo_id.lower(), path))

    def gets(self, path_suffix: str = "") -> list[dict[str, Any]]:
        """Logged content GETs (resolve and CDN) whose URL path ends with ``path_suffix``."""
        return [
            r
            for r in self.requests
            if r["method"] == "GET" and r["content"] and r["file"].endswith(path_suffix)
        ]

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeHub:
        hub = self

        class Handler(_Handler):
            fake = hub

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="fakehub", daemon=True
        )
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---------------------------------------------------------------- helpers used by the handler

    def advertised_sha(self, repo: FakeRepo, path: str, data: bytes) -> str:
        if (repo.repo_id.lower(), path) in self._wrong:
            return sha256_hex(data + b"tampered")
        return sha256_hex(data)

    def take_cut(self, path: str) -> int | None:
        with self._lock:
            return self._cuts.pop(path, None)


def _git_blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    fake: FakeHub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    # ---------------------------------------------------------------- plumbing

    def _log(self, content: bool = False, file: str = "") -> None:
        self.fake.requests.append(
            {
                "method": self.command,
                "path": self.path,
                "headers": dict(self.headers),
                "content": content,
                "file": file,
            }
        )

    def _send(
        self,
        status: int,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(data).encode(), headers)

    def _error(self, status: int, code: str, message: str) -> None:
        self._send(
            status,
            json.dumps({"error": message}).encode(),
            {"X-Error-Code": code, "X-Error-Message": message},
        )

    def _authorized(self, repo: FakeRepo) -> bool:
        auth = self.headers.get("Authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else ""
        return token in repo.tokens

    def _find_repo(self, repo_id: str) -> FakeRepo | None:
        return self.fake.repos.get(repo_id.lower())

    # ---------------------------------------------------------------- routing

    def do_HEAD(self) -> None:
        self._route()

    def do_GET(self) -> None:
        self._route()

    def _route(self) -> None:
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        query = parse_qs(parts.query)
        if path.rstrip("/") == "/api/models":
            return self._search(query)
        m = re.match(r"^/api/models/([^/]+/[^/]+)(?:/revision/([^/]+))?/?$", path)
        if m:
            return self._model_info(m[1], m[2] or "main")
        m = re.match(r"^/api/models/([^/]+/[^/]+)/tree/([^/]+)(?:/(.*))?$", path)
        if m:
            return self._tree(m[1], m[2], m[3] or "", query)
        m = re.match(r"^/cdn/([^/]+/[^/]+)/([0-9a-f]{40})/(.+)$", path)
        if m:
            return self._cdn(m[1], m[2], m[3])
        m = re.match(r"^/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$", path)
        if m:
            return self._resolve(m[1], m[2], m[3])
        self._log()
        self._error(404, "NotFound", f"no route for {path}")

    def _repo_or_error(self, repo_id: str, *, content: bool) -> FakeRepo | None:
        repo = self._find_repo(repo_id)
        if repo is None:
            self._error(401, "RepoNotFound", "Repository not found")
            return None
        if repo.private and not self._authorized(repo):
            self._error(401, "RepoNotFound", "Repository not found")
            return None
        if repo.gated and content and not self._authorized(repo):
            self._error(
                403,
                "GatedRepo",
                f"Access to model {repo.repo_id} is restricted. You must have access to it "
                "and be authenticated to access it. Please log in.",
            )
            return None
        return repo

    # ---------------------------------------------------------------- endpoints

    def _search(self, query: dict) -> None:
        self._log()
        if self.fake.search_status:
            return self._error(self.fake.search_status, "ServerError", "search is down")
        text = query.get("search", [""])[0].lower()
        tags = query.get("filter", [])
        found = [
            r
            for r in self.fake.repos.values()
            if text in r.repo_id.lower()
            and all(t in r.tags for t in tags)
            and (not r.private or self._authorized(r))
        ]
        if query.get("sort", [""])[0] == "downloads":
            found.sort(key=lambda r: -r.downloads)
        limit = int(query.get("limit", ["1000"])[0])
        self._json(
            [
                {
                    "_id": r.repo_id,
                    "id": r.repo_id,
                    "modelId": r.repo_id,
                    "likes": r.likes,
                    "downloads": r.downloads,
                    "private": r.private,
                    "gated": "manual" if r.gated else False,
                    "tags": r.tags,
                    "pipeline_tag": r.pipeline_tag,
                    "library_name": "gguf",
                    "createdAt": "2025-01-01T00:00:00.000Z",
                }
                for r in found[:limit]
            ]
        )

    def _model_info(self, repo_id: str, rev: str) -> None:
        self._log()
        repo = self._repo_or_error(repo_id, content=False)
        if repo is None:
            return
        sha = repo.resolve_revision(rev)
        if sha is None:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        files = repo.commits[sha]
        siblings = [{"rfilename": p} for p in sorted(files)]
        self._json(
            {
                "_id": repo.repo_id,
                "id": repo.repo_id,
                "modelId": repo.repo_id,
                "author": repo.repo_id.split("/")[0],
                "sha": sha,
                "private": repo.private,
                "gated": "manual" if repo.gated else False,
                "disabled": False,
                "tags": ["gguf"],
                "library_name": "gguf",
                "siblings": siblings,
                "lastModified": "2025-01-01T00:00:00.000Z",
            }
        )

    def _tree(self, repo_id: str, rev: str, sub: str, query: dict) -> None:
        self._log()
        repo = self._repo_or_error(repo_id, content=False)
        if repo is None:
            return
        sha = repo.resolve_revision(rev)
        if sha is None:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        recursive = (query.get("recursive", ["false"])[0]).lower() in ("true", "1")
        prefix = (sub.strip("/") + "/") if sub else ""
        entries: list[dict] = []
        dirs: set[str] = set()
        for path, data in sorted(repo.commits[sha].items()):
            if not path.startswith(prefix):
                continue
            rest = path[len(prefix) :]
            if "/" in rest:
                top = prefix + rest.split("/")[0]
                if top not in dirs:
                    dirs.add(top)
                    entries.append(
                        {
                            "type": "directory",
                            "oid": hashlib.sha1(top.encode()).hexdigest(),
                            "size": 0,
                            "path": top,
                        }
                    )
                if not recursive:
                    continue
            entry: dict[str, Any] = {
                "type": "file",
                "oid": _git_blob_sha(data),
                "size": len(data),
                "path": path,
            }
            if len(data) >= repo.lfs_threshold:
                entry["lfs"] = {
                    "oid": self.fake.advertised_sha(repo, path, data),
                    "size": len(data),
                    "pointerSize": 134,
                }
            entries.append(entry)
        if recursive:  # nested directories too
            for path in list(repo.commits[sha]):
                parts = path[len(prefix) :].split("/")[:-1] if path.startswith(prefix) else []
                for i in range(1, len(parts)):
                    d = prefix + "/".join(parts[: i + 1])
                    if d not in dirs:
                        dirs.add(d)
                        entries.append(
                            {
                                "type": "directory",
                                "oid": hashlib.sha1(d.encode()).hexdigest(),
                                "size": 0,
                                "path": d,
                            }
                        )
        self._json(entries)

    def _file_headers(self, repo: FakeRepo, sha: str, path: str, data: bytes) -> dict[str, str]:
        lfs = len(data) >= repo.lfs_threshold
        headers = {"X-Repo-Commit": sha, "Accept-Ranges": "bytes"}
        if lfs:
            adv = self.fake.advertised_sha(repo, path, data)
            headers.update(
                {"ETag": f'"{adv}"', "X-Linked-Etag": f'"{adv}"', "X-Linked-Size": str(len(data))}
            )
        else:
            headers["ETag"] = f'"{_git_blob_sha(data)}"'
        return headers

    def _resolve(self, repo_id: str, rev: str, path: str) -> None:
        repo = self._repo_or_error(repo_id, content=True)
        if repo is None:
            self._log()
            return
        sha = repo.resolve_revision(rev)
        if sha is None:
            self._log()
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        files = repo.commits[sha]
        if path not in files:
            self._log()
            return self._error(404, "EntryNotFound", f"{path} does not exist at {rev}")
        data = files[path]
        headers = self._file_headers(repo, sha, path, data)
        if len(data) >= repo.lfs_threshold and self.fake.redirect_lfs:
            self._log()
            host, port = self.server.server_address[:2]
            headers["Location"] = f"http://{host}:{port}/cdn/{repo.repo_id}/{sha}/{quote(path)}"
            return self._send(302, b"", headers)
        self._log(content=self.command == "GET", file=path)
        self._content(data, headers, path)

    def _cdn(self, repo_id: str, sha: str, path: str) -> None:
        self._log(content=self.command == "GET", file=path)
        repo = self._find_repo(repo_id)
        if repo is None or sha not in repo.commits or path not in repo.commits[sha]:
            return self._error(404, "EntryNotFound", "no such object")
        data = repo.commits[sha][path]
        self._content(data, {"ETag": f'"{sha256_hex(data)}"', "Accept-Ranges": "bytes"}, path)

    def _content(self, data: bytes, headers: dict[str, str], path: str) -> None:
        total = len(data)
        start, end = 0, total - 1
        status = 200
        rng = self.headers.get("Range")
        if rng:
            m = re.match(r"^bytes=(\d+)-(\d*)$", rng.strip())
            if not m or int(m[1]) >= total:
                headers = dict(headers, **{"Content-Range": f"bytes */{total}"})
                return self._send(416, b"", headers)
            start = int(m[1])
            end = min(int(m[2]), total - 1) if m[2] else total - 1
            status = 206
            headers = dict(headers, **{"Content-Range": f"bytes {start}-{end}/{total}"})
        body = data[start : end + 1]
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command == "HEAD":
            return
        gate = self.fake._holds.get(path)
        hold_at = self.fake._hold_after.get(path, 0) - start if gate is not None else -1
        if hold_at <= 0 and gate is not None:
            gate.wait(timeout=120)
        cut = self.fake.take_cut(path) if self.command == "GET" else None
        limit = len(body) if cut is None else max(0, min(cut - start, len(body)))
        sent = 0
        import time

        try:
            while sent < limit:
                piece = body[sent : min(limit, sent + 65536)]
                self.wfile.write(piece)
                sent += len(piece)
                if gate is not None and 0 < hold_at <= sent and not gate.is_set():
                    self.wfile.flush()
                    gate.wait(timeout=120)
                if self.fake.delay_per_chunk:
                    time.sleep(self.fake.delay_per_chunk)
            if cut is not None:
                self.wfile.flush()
                self.close_connection = True
                import socket

                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


# ------------------------------------------------------------------ fixtures


@pytest.fixture
def fake_hub(monkeypatch):
    """A running FakeHub with ``HF_ENDPOINT`` pointing at it (and no HF token set)."""
    hub = FakeHub().start()
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    try:
        yield hub
    finally:
        hub.release_all()
        hub.stop()


@pytest.fixture
def store_settings(tmp_path):
    """Settings whose cache, config and data directories are all under ``tmp_path``."""
    from mullama.config import load_settings

    return load_settings(
        env={},
        cache_dir=tmp_path / "cache",
        config_dir=tmp_path / "config",
        data_dir=tmp_path / "data",
    )


@pytest.fixture
def model_store(store_settings):
    from mullama.engine.store import ModelStore

    return ModelStore(store_settings)


def write_user_registry(settings, text: str) -> Path:
    """Write the user's alias file for ``settings`` and return its path."""
    path = Path(settings.registry_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


__all__ = [
    "FakeHub",
    "FakeRepo",
    "fake_hub",
    "make_gguf",
    "make_gguf_bytes",
    "model_store",
    "sha256_hex",
    "store_settings",
    "write_user_registry",
]
