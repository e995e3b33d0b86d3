"""llama.cpp's default thread count leaves a CPU to the rest of the daemon."""

from __future__ import annotations

import pytest

from mullama.engine.manager import default_threads


@pytest.mark.parametrize(
    ("physical", "logical", "threads"),
    [(1, 1, 1), (2, 2, 1), (4, 4, 3), (16, 16, 15), (4, 8, 4), (8, 16, 8)],
)
def test_one_thread_a_core_but_never_every_cpu(physical, logical, threads):
    assert default_threads(physical, logical) == threads
