"""The prompt cache's disk tier: evicted states in private files, found again after a restart."""

from __future__ import annotations

import stat

import numpy as np
import pytest

from mullama.engine.prompt_cache import Entry, PromptCache
from mullama.engine.prompt_cache_disk import DiskTier

MiB = 2**20


def entry(tokens: list[int], nbytes: int = 1000, key: str = "m") -> Entry:
    state = np.arange(nbytes, dtype=np.uint8)  # not all zeros: what is read back is compared
    logits = np.linspace(-1, 1, 8, dtype=np.float32)
    return Entry(key, np.asarray(tokens, dtype=np.int32), state, logits, len(tokens))


def tokens(n: int, start: int = 1) -> np.ndarray:
    return np.arange(start, start + n, dtype=np.int32)


@pytest.fixture
def disk(tmp_path):
    tier = DiskTier(tmp_path / "states", 10 * MiB)
    yield tier
    tier.close()


def test_an_evicted_entry_is_written_and_read_back_whole(disk, tmp_path):
    cache = PromptCache(2500, disk)  # two entries of about 1,100 bytes
    a = entry(list(range(1, 41)))
    for e in (a, entry(list(range(100, 140))), entry(list(range(200, 240)))):
        cache.put(e)
    disk.flush()
    assert cache.evictions == 1 and disk.entries == 1 and disk.writes == 1
    folder = tmp_path / "states"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    (file,) = folder.iterdir()
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    found, n = cache.find("m", tokens(50))
    assert n == 40 and found is not None and disk.hits == 1
    assert np.array_equal(found.state, a.state) and np.array_equal(found.tokens, a.tokens)
    assert found.logits is not None and np.array_equal(found.logits, a.logits)
    assert found.logits_at == 40
    # back in memory, its file gone; the entry it pushed out of memory went to disk
    disk.flush()
    assert not file.exists() and disk.find("m", tokens(40))[0] is None
    assert disk.find("m", tokens(40, 100))[1] == 40
    assert cache.saves == 3  # reading it back is no save


def test_files_outlive_the_tier_and_another_key_never_matches(tmp_path):
    first = DiskTier(tmp_path / "states", 10 * MiB)
    first.write(entry(list(range(1, 41))))
    first.close()
    again = DiskTier(tmp_path / "states", 10 * MiB)
    try:
        assert again.entries == 1
        assert again.find("other", tokens(40)) == (None, 0)
        stored, n = again.find("m", tokens(40))
        assert stored is not None and n == 40
        back = again.take(stored)
        assert back is not None and np.array_equal(back.state, np.arange(1000, dtype=np.uint8))
    finally:
        again.close()


def test_the_disk_limit_removes_the_oldest_files(tmp_path):
    tier = DiskTier(tmp_path / "states", 3000)  # two files of about 1,300 bytes
    try:
        for start in (1, 100, 200):
            tier.write(entry(list(range(start, start + 40))))
        assert tier.entries == 2 and tier.bytes <= 3000
        assert tier.find("m", tokens(40))[0] is None  # the first went
        assert tier.find("m", tokens(40, 200))[1] == 40
        tier.write(entry(list(range(300, 340)), nbytes=5000))  # bigger than the limit
        assert tier.entries == 2
    finally:
        tier.close()


def test_a_damaged_or_foreign_file_is_removed_at_start(tmp_path):
    folder = tmp_path / "states"
    tier = DiskTier(folder, 10 * MiB)
    tier.write(entry(list(range(1, 41))))
    tier.close()
    (good,) = folder.iterdir()
    (folder / "junk.state").write_bytes(b"not a state")
    (folder / "cut.tmp").write_bytes(b"half")
    (folder / "keep.txt").write_text("not ours")
    again = DiskTier(folder, 10 * MiB)
    try:
        assert again.entries == 1
        assert sorted(p.name for p in folder.iterdir()) == sorted([good.name, "keep.txt"])
        # a state cut short is found by its header, and dropped when it is read
        data = good.read_bytes()
        good.write_bytes(data[:-10])
        stored, _ = again.find("m", tokens(40))
        assert stored is not None and again.take(stored) is None and not good.exists()
    finally:
        again.close()


# ------------------------------------------------------------ on the real model


@pytest.mark.slow
async def test_a_state_from_disk_answers_as_the_one_kept_in_memory(model, tmp_path):
    from tests.engine.test_prompt_cache import generate, make_runner, text

    disk = DiskTier(tmp_path / "states", 256 * MiB)
    cache = PromptCache(256 * MiB, disk)
    runner = make_runner(model, cache)
    try:
        first = model.tokenize(text(60))
        reply, _ = await generate(runner, first)
        await generate(runner, model.tokenize(text(61)))  # turn 1's state into memory
        second = first + reply + model.tokenize(" Who built it?", add_special=False)
        from_memory, _ = await generate(runner, second)
        await generate(runner, model.tokenize(text(62)))
        cache.limit = cache.bytes  # full: the next save pushes the oldest state to disk
        await generate(runner, model.tokenize(text(63)))
        disk.flush()
        assert disk.writes >= 1
        from_disk, done = await generate(runner, second)
        assert disk.hits == 1 and done.usage.cached_tokens >= len(first)
        assert from_disk == from_memory
    finally:
        runner.stop()
        disk.close()


@pytest.mark.slow
async def test_states_outlive_a_daemon_restart_on_disk(tmp_path, test_model_path):
    from mullama.engine.metrics import EngineMetrics
    from tests.engine.test_prompt_cache import _complete, _engine, text

    options = dict(
        context_size=512,
        prompt_cache_ram_mb=64,
        prompt_cache_disk_mb=64,
        prompt_cache_dir=tmp_path / "states",
    )
    name, prompt = str(test_model_path), text(70)
    engine = _engine(tmp_path / "a", **options)
    try:
        reply, _ = await _complete(engine, name, prompt)
    finally:
        await engine.close()  # the slot's state, into memory, then to disk
    assert len(list((tmp_path / "states").glob("*.state"))) == 1
    engine = _engine(tmp_path / "b", **options)
    try:
        _, done = await _complete(engine, name, prompt + reply + " Who built it?")
        cache = engine.manager.prompt_cache
        assert cache is not None and cache.disk is not None and cache.disk.hits == 1
        assert done.usage.cached_tokens >= 40
        assert (
            "mullama_prompt_cache_disk_hits_total 1.0"
            in EngineMetrics(engine).exposition().decode()
        )
    finally:
        await engine.close()
