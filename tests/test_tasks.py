"""Task helpers: removal and relabelling problems, groups and their clear errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import gif_lite as gl


def _model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    model[0].bias.requires_grad_(False)  # frozen parameters are not part of theta
    return model


@pytest.mark.parametrize(
    ("group", "match"),
    [
        (torch.tensor([], dtype=torch.long), "empty"),
        (torch.tensor([0, 50]), "must lie in"),
        (torch.tensor([1, 1]), "duplicated"),
        (torch.tensor([0.0, 1.0]), "integer"),
        (torch.arange(20), "every example"),
    ],
)
def test_bad_groups_are_named(group: torch.Tensor, match: str) -> None:
    x, y = torch.randn(20, 3), torch.randint(0, 2, (20,))
    with pytest.raises(ValueError, match=match):
        gl.removal_problem(_model(), F.cross_entropy, (x, y), group)
    with pytest.raises(ValueError, match=match):
        gl.relabel_problem(
            _model(), F.cross_entropy, (x, y), group, torch.zeros(len(group), dtype=torch.long)
        )


def test_relabel_needs_one_label_per_example() -> None:
    x, y = torch.randn(20, 3), torch.randint(0, 2, (20,))
    with pytest.raises(ValueError, match="new_labels has 1 entries for a group of 2"):
        gl.relabel_problem(_model(), F.cross_entropy, (x, y), torch.tensor([0, 1]), torch.tensor([1]))


def test_relabel_takes_one_label_for_the_whole_group() -> None:
    x, y = torch.randn(20, 3), torch.randint(0, 2, (20,))
    group = torch.tensor([0, 5, 7])
    one = gl.relabel_problem(_model(), F.cross_entropy, (x, y), group, 1)
    each = gl.relabel_problem(_model(), F.cross_entropy, (x, y), group, torch.ones(3, dtype=torch.long))
    assert torch.equal(one.g, each.g)


def test_one_group_rule_accepts_masks_everywhere() -> None:
    x, y = torch.randn(20, 3), torch.randint(0, 2, (20,))
    mask = torch.zeros(20, dtype=torch.bool)
    mask[[2, 7, 11]] = True
    assert torch.equal(gl.check_group(mask, 20), torch.tensor([2, 7, 11]))
    assert torch.equal(gl.keep_mask(torch.tensor([2, 7, 11]), 20), ~mask)
    by_mask = gl.removal_problem(_model(), F.cross_entropy, (x, y), mask)
    by_index = gl.removal_problem(_model(), F.cross_entropy, (x, y), torch.tensor([2, 7, 11]))
    assert torch.equal(by_mask.g, by_index.g)
    assert torch.equal(gl.drop_examples((x, y), mask)[0], x[~mask])
    with pytest.raises(ValueError, match="boolean group mask must have shape"):
        gl.check_group(mask[:5], 20)
    assert gl.check_group(torch.tensor([], dtype=torch.long), 20, allow_empty=True).numel() == 0
