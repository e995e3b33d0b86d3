"""A model tokenizing in a worker thread (the engine does so for long prompts, off the event
loop) is not freed under it: an unload's ``close()`` waits until the worker is done."""

from __future__ import annotations

import threading

import pytest

from mullama.engine.llm import LlamaError, Model

pytestmark = pytest.mark.slow


def test_close_waits_for_a_worker_using_the_model(test_model_path):
    model = Model(str(test_model_path))
    entered, release = threading.Event(), threading.Event()
    tokens: list[int] = []

    def worker() -> None:
        with model.in_use():
            entered.set()
            release.wait(60)
            tokens.extend(model.tokenize("still loaded"))

    user = threading.Thread(target=worker)
    user.start()
    assert entered.wait(60)
    closer = threading.Thread(target=model.close)
    closer.start()
    closer.join(0.5)
    assert closer.is_alive() and model.ptr  # waiting, the model still loaded
    release.set()
    user.join(60)
    closer.join(60)
    assert tokens and model.ptr is None
    with pytest.raises(LlamaError, match="unloaded"), model.in_use():
        pass
