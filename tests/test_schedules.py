"""The learning-rate schedules (fastnn/schedules.py): step decay, exponential decay
(continuous and staircase), cosine annealing with warm-up, and their argument checks."""

import itertools
import math

import pytest

from fastnn import schedules


def test_step_decay():
    s = schedules.step_decay(0.1, drop=0.5, every=3)
    assert [s(e) for e in range(7)] == pytest.approx([0.1] * 3 + [0.05] * 3 + [0.025])


def test_exponential_decay():
    s = schedules.exponential_decay(1.0, decay_rate=0.5, decay_epochs=2)
    assert [s(e) for e in range(4)] == pytest.approx([1, 0.5**0.5, 0.5, 0.5**1.5])
    s = schedules.exponential_decay(1.0, decay_rate=0.5, decay_epochs=2, staircase=True)
    assert [s(e) for e in range(4)] == pytest.approx([1, 1, 0.5, 0.5])


def test_cosine_annealing_with_warmup():
    s = schedules.cosine_annealing(0.1, total_epochs=10, min_lr=0.001, warmup_epochs=2)
    assert s(0) == pytest.approx(0.1 / 3) and s(1) == pytest.approx(0.2 / 3)
    assert s(2) == pytest.approx(0.1)
    assert s(6) == pytest.approx(0.001 + 0.099 * 0.5)  # halfway through the 8 cosine epochs
    assert s(10) == pytest.approx(0.001) and s(50) == pytest.approx(0.001)
    values = [s(e) for e in range(2, 11)]
    assert all(a >= b for a, b in itertools.pairwise(values))
    plain = schedules.cosine_annealing(1.0, total_epochs=4)
    assert [plain(e) for e in range(5)] == pytest.approx(
        [1.0, (1 + math.cos(math.pi / 4)) / 2, 0.5, (1 + math.cos(3 * math.pi / 4)) / 2, 0.0]
    )
    assert "cosine_annealing" in repr(s)


def test_schedule_arguments_are_validated():
    with pytest.raises(ValueError, match="warmup_epochs"):
        schedules.cosine_annealing(0.1, total_epochs=5, warmup_epochs=5)
    with pytest.raises(ValueError, match="every"):
        schedules.step_decay(0.1, every=0)
    with pytest.raises(ValueError, match="epoch"):
        schedules.step_decay(0.1)(-1)
