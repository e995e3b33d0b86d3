"""The store refuses damaged GGUFs before llama.cpp sees them, confines the files an untrusted
caller may name, reports a full disk as such, and clears what a killed pull left in partial/.

Damaged files are made from the bundled test model: copied, then truncated or overwritten."""

from __future__ import annotations

import errno
import os
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mullama.engine.api import InsufficientStorage, InvalidRequest
from mullama.engine.confined import AllowedDirs, split_dirs
from mullama.engine.gguf_info import GGUFError, check_gguf
from tests.fakehub import make_gguf

TENSOR_TRUNCATED = re.compile(
    r"not a valid GGUF file: truncated \(tensor \S+ ends at byte (\d+), file is (\d+) bytes\)"
)


def cut(source: Path, target: Path, size: int) -> Path:
    with open(source, "rb") as src, open(target, "wb") as out:
        out.write(src.read(size))
    return target


@pytest.fixture(scope="module")
def damaged(tmp_path_factory, test_model_path) -> dict[str, Path]:
    """Broken copies of the test model, by what is wrong with them."""
    root = tmp_path_factory.mktemp("damaged")
    size = test_model_path.stat().st_size
    out = {
        "half": cut(test_model_path, root / "half.gguf", size // 2),
        "last byte": cut(test_model_path, root / "minus1.gguf", size - 1),
        "header only": cut(test_model_path, root / "header.gguf", 4 << 20),
        "100 bytes": cut(test_model_path, root / "tiny.gguf", 100),
    }
    rng = random.Random(20)
    (root / "random.gguf").write_bytes(b"GGUF" + rng.randbytes(1 << 20))
    out["random"] = root / "random.gguf"
    (root / "random3.gguf").write_bytes(b"GGUF\x03\0\0\0" + rng.randbytes(1 << 20))
    out["random v3"] = root / "random3.gguf"
    scrambled = shutil.copy(test_model_path, root / "scrambled.gguf")
    with open(scrambled, "r+b") as f:  # inside the vocabulary: string lengths turn absurd
        f.seek(2_000_000)
        f.write(rng.randbytes(4096))
    out["scrambled header"] = Path(scrambled)
    return out


def test_the_test_model_passes(test_model_path):
    header = check_gguf(test_model_path)
    assert len(header.tensors) > 100 and header.data_offset > 0


@pytest.mark.parametrize(
    "kind",
    ["half", "last byte", "header only", "100 bytes", "random", "random v3", "scrambled header"],
)
def test_damaged_files_are_refused_with_a_reason(damaged, kind):
    started = time.monotonic()
    with pytest.raises(GGUFError, match=r"^not a valid GGUF file: \S") as err:
        check_gguf(damaged[kind])
    assert time.monotonic() - started < 5  # bounded: a random header cannot make it read on
    if kind in ("half", "last byte"):
        match = TENSOR_TRUNCATED.fullmatch(str(err.value))
        assert match, err.value
        end, size = map(int, match.groups())
        assert size == damaged[kind].stat().st_size < end
    if kind in ("header only", "100 bytes"):
        assert "truncated" in str(err.value)


def test_create_refuses_a_truncated_file(model_store, damaged):
    with pytest.raises(InvalidRequest) as err:
        model_store.create("broken", f"FROM {damaged['half']}\n")
    assert err.value.status == 400 and err.value.param == "modelfile"
    assert TENSOR_TRUNCATED.search(err.value.message), err.value.message
    assert model_store.list() == []


def test_create_refuses_a_damaged_projector_and_adapter(model_store, damaged, test_model_path):
    for line in ("VISION_PROJECTOR", "ADAPTER"):
        with pytest.raises(InvalidRequest, match=f"^{line} .*not a valid GGUF file"):
            model_store.create("broken", f"FROM {test_model_path}\n{line} {damaged['random']}\n")
    assert model_store.list() == []


def test_a_file_damaged_after_create_is_refused_before_loading(model_store, tmp_path, damaged):
    good = make_gguf(tmp_path / "good.gguf", name="good", padding=4096)
    model_store.create("was-good", f"FROM {good}\n")
    assert model_store.resolve("was-good").weights == good.resolve()
    cut(good, tmp_path / "cut.gguf", good.stat().st_size - 4096 - 64)
    os.replace(tmp_path / "cut.gguf", good)
    with pytest.raises(
        InvalidRequest, match="^the weights of was-good:latest: not a valid GGUF file: truncated"
    ):
        model_store.resolve("was-good")
    with pytest.raises(InvalidRequest, match="half.gguf: not a valid GGUF file: truncated"):
        model_store.resolve(str(damaged["half"]))
    assert model_store.resolve("was-good", verify=False).name == "was-good:latest"  # rm, show


async def test_the_engine_never_hands_llama_cpp_a_damaged_file(settings, damaged):
    from mullama.engine.local import LocalEngine

    engine = LocalEngine(settings)
    try:
        for kind in ("half", "random v3", "scrambled header"):
            with pytest.raises(InvalidRequest, match="not a valid GGUF file"):
                await engine.load_model(str(damaged[kind]))
        assert await engine.running_models() == []
    finally:
        await engine.close()


# ------------------------------------------------------------------ allowed directories


def test_allowed_dirs_resolve_symlinks_and_refuse_alike(tmp_path):
    inside, outside = tmp_path / "models", tmp_path / "private"
    inside.mkdir()
    outside.mkdir()
    good = make_gguf(inside / "m.gguf")
    secret = make_gguf(outside / "secret.gguf")
    (inside / "link-out.gguf").symlink_to(secret)
    (inside / "link-in.gguf").symlink_to(good)
    (outside / "link-to-inside.gguf").symlink_to(good)
    allowed = AllowedDirs([inside])
    assert allowed.find(str(good)) == good.resolve()
    assert allowed.find(str(inside / "link-in.gguf")) == good.resolve()
    assert allowed.find(str(outside / "link-to-inside.gguf")) == good.resolve()
    for refused in (
        str(secret),  # there, but elsewhere
        str(outside / "missing.gguf"),  # not there
        str(inside / "link-out.gguf"),  # inside by name only
        str(inside / ".." / "private" / "secret.gguf"),
        "m.gguf",  # relative, and no base to resolve it against
        str(inside),  # a directory
        "/etc/shadow",
    ):
        assert allowed.find(refused) is None, refused
    assert allowed.find("m.gguf", base=inside) == good.resolve()
    assert allowed.find("../private/secret.gguf", base=inside) is None


def test_allowed_model_dirs_take_commas_and_colons():
    assert split_dirs("/a, /b:/c ,, ") == ["/a", "/b", "/c"]
    assert split_dirs("") == []


def test_confined_create_answers_alike_for_missing_and_elsewhere(model_store, tmp_path):
    inside = tmp_path / "shared"
    inside.mkdir()
    make_gguf(inside / "ok.gguf")
    secret = tmp_path / "secret.txt"
    secret.write_text("not for you")
    allowed = AllowedDirs([inside])
    answers = {}
    for line in ("FROM", "VISION_PROJECTOR", "ADAPTER"):
        for given in (str(secret), str(tmp_path / "missing.gguf"), "./ok.gguf", "/etc/shadow"):
            text = (
                f"{line} {given}\n"
                if line == "FROM"
                else f"FROM {inside}/ok.gguf\n{line} {given}\n"
            )
            with pytest.raises(InvalidRequest) as err:
                model_store.create("x", text, allowed=allowed)
            answers[(line, given)] = err.value.message.replace(given, "<path>")
            assert "secret" not in err.value.message.replace(given, "")
        assert len({a for (ln, _), a in answers.items() if ln == line}) == 1, answers
    assert model_store.list() == []
    info = model_store.create("ok", f"FROM {inside}/ok.gguf\n", allowed=allowed)
    assert info.name == "ok:latest"
    # relative paths resolve against base_dir when one is given, and must stay inside
    model_store.create("ok2", "FROM ./ok.gguf\n", base_dir=inside, allowed=allowed)
    with pytest.raises(InvalidRequest, match="no such file in the directories"):
        model_store.create("x", "FROM ../secret.txt\n", base_dir=inside, allowed=allowed)


def test_trusted_create_still_takes_any_path(model_store, tmp_path):
    make_gguf(tmp_path / "anywhere" / "m.gguf")
    assert model_store.create("mine", "FROM ./m.gguf\n", base_dir=tmp_path / "anywhere").name


# ------------------------------------------------------------------ a full disk


def test_a_full_disk_is_insufficient_storage(model_store, tmp_path, monkeypatch):
    """The manifest write fails at a seam; the blob's bytes go to /dev/full (a real ENOSPC)."""
    import mullama.engine.store.manifest as manifest_module

    def no_space(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    good = make_gguf(tmp_path / "m.gguf")
    with monkeypatch.context() as patch:
        patch.setattr(manifest_module, "atomic_write", no_space)
        with pytest.raises(InsufficientStorage) as err:
            model_store.create("m", f"FROM {good}\n")
    assert err.value.status == 507 and "not enough disk space" in err.value.message
    fdopen = os.fdopen

    def onto_dev_full(fd, mode="r", *args, **kwargs):
        if mode != "wb":
            return fdopen(fd, mode, *args, **kwargs)
        os.close(fd)
        return open("/dev/full", "wb")

    with monkeypatch.context() as patch:
        patch.setattr(os, "fdopen", onto_dev_full)
        with pytest.raises(InsufficientStorage, match="storing the blob failed: not enough"):
            model_store.add_blob(b"x" * 100_000)
    assert list(model_store.blobs_dir.iterdir()) == []
    assert list(model_store.partial_dir.iterdir()) == []


# ------------------------------------------------------------------ partial files


def _aged(path: Path, seconds: float, data: bytes = b"partial") -> Path:
    path.write_bytes(data)
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


HOLD = """
import sys, time
from filelock import FileLock
lock = FileLock(sys.argv[1]); lock.acquire(); print("held", flush=True); time.sleep(60)
"""


def test_prune_clears_partials_no_live_pull_is_writing(model_store):
    partial, day = model_store.partial_dir, 24 * 3600
    tags = {name: name[0] * 64 for name in ("old", "fresh", "busy")}
    old = _aged(partial / f"{tags['old']}.part", 2 * day)
    old_note = _aged(partial / f"{tags['old']}.part.json", 2 * day, b"{}")
    fresh = _aged(partial / f"{tags['fresh']}.part", day / 2)  # resumable: a pull may go on
    busy = _aged(partial / f"{tags['busy']}.part", 2 * day)  # a pull in another process
    killed_upload = _aged(partial / "upload-abc.part", 2 * 3600)
    live_upload = _aged(partial / "upload-def.part", 60)
    killed_package = _aged(partial / "package-0123.gguf", 2 * 3600, b"GGUF" * 100)
    lock = model_store.locks_dir / f"download-{tags['busy'][:40]}.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(lock)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        removed, freed = model_store.prune()
    finally:
        holder.kill()
        holder.wait()
    assert {p.name for p in partial.iterdir()} == {fresh.name, busy.name, live_upload.name}
    assert not old.exists() and not old_note.exists()
    assert not killed_upload.exists() and not killed_package.exists()
    assert (removed, freed) == (4, len(b"partial") * 2 + 2 + 400)
    # once its pull is gone, the stale download goes too
    assert model_store.prune() == (1, len(b"partial")) and not busy.exists()
