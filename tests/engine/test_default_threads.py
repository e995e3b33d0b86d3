"""llama.cpp's default thread count: one a physical core, as llama-server's."""

from __future__ import annotations

import pytest

from mullama.engine.manager import default_threads


@pytest.mark.parametrize(
    ("physical", "logical", "threads"),
    [(1, 1, 1), (2, 2, 2), (4, 4, 4), (16, 16, 16), (4, 8, 4), (8, 16, 8)],
)
def test_one_thread_a_physical_core(physical, logical, threads):
    assert default_threads(physical, logical) == threads
