"""Speculative decoding's parts without a model: the prompt-lookup drafter, the step-cost model
and the rule that picks how many draft tokens a step verifies."""

from __future__ import annotations

import pytest

from mullama.engine.speculative import Drafter, Proposal, StepCost, choose


def test_a_repeated_ngram_drafts_what_followed_it_last_time():
    history = [5, 6, 7, 8, 9, 10, 1, 2, 5, 6, 7]
    proposal = Drafter(draft_max=3).propose(history, limit=10)
    assert proposal is not None
    assert proposal.tokens == [8, 9, 10]


def test_the_most_recent_occurrence_wins_and_the_limit_holds():
    history = [1, 2, 3, 40, 41, 1, 2, 3, 50, 51, 52, 9, 1, 2, 3]
    drafter = Drafter(draft_max=16)
    assert drafter.propose(history, limit=2).tokens == [50, 51]
    # what follows runs into the tail: the tail repeats, as a loop does
    assert drafter.propose(history, limit=10).tokens == [50, 51, 52, 9, 1, 2, 3, 50, 51, 52]


def test_nothing_to_draft_without_a_repeat():
    assert Drafter(draft_max=8).propose(list(range(100)), limit=8) is None


def test_drafting_off_or_too_short_for_draft_min():
    history = [5, 1, 2, 3, 1, 2]  # a loop of 1, 2, 3
    assert Drafter(draft_max=0).propose(history, limit=8) is None
    assert Drafter(draft_max=8, draft_min=3).propose(history, limit=2) is None
    assert Drafter(draft_max=4, draft_min=3).propose(history, limit=8).tokens == [3, 1, 2, 3]
    assert Drafter(draft_max=8, draft_min=5).propose(history, limit=4) is None


def test_image_cells_are_never_drafted():
    history = [7, 8, -3, -3, 9, 7, 8]
    assert Drafter(draft_max=8).propose(history, limit=8) is None
    history = [7, 8, 4, -3, 9, 7, 8]
    assert Drafter(draft_max=8).propose(history, limit=8).tokens == [4]


def test_a_long_prompt_is_indexed_over_several_steps():
    prompt = list(range(10_000)) + [3, 4]
    drafter = Drafter(draft_max=4)
    first = drafter.propose(prompt, limit=4)  # the first 4096 positions hold the match
    assert first is not None and first.tokens == [5, 6, 7, 8]
    late = list(range(10_000)) + [9_000, 9_001]
    drafter = Drafter(draft_max=4)
    assert drafter.propose(late, limit=4) is None  # not indexed yet
    drafter.propose(late, limit=4)
    assert drafter.propose(late, limit=4).tokens == [9_002, 9_003, 9_004, 9_005]


def test_the_chance_follows_how_drafts_fared():
    history = [1, 2, 3, 4, 5, 6, 1, 2, 3]
    drafter = Drafter(draft_max=4)
    fresh = drafter.propose(history, limit=4).chance
    for _ in range(5):
        drafter.verified(4, 0)
    failing = drafter.propose(history, limit=4).chance
    assert failing < fresh / 3
    for _ in range(60):  # steps without drafts: the record fades back toward the prior
        drafter.idle()
    assert drafter.propose(history, limit=4).chance == pytest.approx(fresh, abs=0.01)
    for _ in range(5):
        drafter.verified(4, 4)
    assert drafter.propose(history, limit=4).chance > 0.85
    assert (drafter.proposed, drafter.accepted) == (40, 20)


def test_step_cost_is_a_line_through_the_steps_it_saw():
    cost = StepCost()
    for _ in range(20):
        for n in (1, 4, 8, 16):
            cost.observe(n, 0.010 + 0.002 * n)
    assert cost.time(1) == pytest.approx(0.012, rel=0.02)
    assert cost.time(12) == pytest.approx(0.034, rel=0.02)  # never seen: on the line
    for _ in range(300):  # the machine got busier: the line follows
        cost.observe(8, 0.052)
        cost.observe(1, 0.024)
    assert cost.time(8) == pytest.approx(0.052, rel=0.05)


def test_before_any_step_a_cpu_like_prior():
    cost = StepCost()
    assert cost.time(2) / cost.time(1) == pytest.approx(1.8 / 1.4)
    cost.observe(1, 0.014)
    assert cost.time(1) == pytest.approx(0.014)
    assert cost.time(16) == pytest.approx(0.014 * 7.4 / 1.4)


def _cost(fixed: float, per_token: float) -> StepCost:
    cost = StepCost()
    for _ in range(30):
        for n in range(1, 40):
            cost.observe(n, fixed + per_token * n)
    return cost


def test_cheap_tokens_draft_everything_likely_and_dear_ones_nothing():
    proposals = {0: (Proposal([1, 2, 3, 4, 5, 6, 7, 8], 0.9), 0)}
    gpu = _cost(0.020, 0.0001)
    assert choose(proposals, 1, gpu, room=64)[0] == [1, 2, 3, 4, 5, 6, 7, 8]
    # 16 sequences: a token is a 1/16 of the output for 1/18 of the step's time, so only a
    # draft kept more often than 0.87 is worth it
    cpu_under_load = _cost(0.010, 0.004)
    assert choose(proposals, 16, cpu_under_load, room=64) == {0: [1]}  # 0.9, not 0.81
    assert choose({0: (Proposal([1, 2], 0.8), 0)}, 16, cpu_under_load, room=64) == {}
    weak = {0: (Proposal([1, 2, 3], 0.2), 0)}
    assert choose(weak, 1, _cost(0.010, 0.004), room=64) == {}


def test_the_likeliest_tokens_go_first_and_draft_min_forces_a_few():
    proposals = {
        0: (Proposal([1, 2, 3, 4], 0.95), 0),
        1: (Proposal([5, 6, 7, 8], 0.3), 2),
    }
    drafts = choose(proposals, 2, _cost(0.010, 0.002), room=64)
    assert drafts[0] == [1, 2, 3, 4]
    assert drafts[1] == [5, 6]  # not worth it, but its request asks for at least two
    assert choose(proposals, 2, _cost(0.0001, 0.000001), room=3)[0] == [1, 2, 3]
