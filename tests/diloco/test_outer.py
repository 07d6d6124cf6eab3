"""The outer optimizer (node.swarm.outer): checked against a hand computation and against torch's SGD."""

import pytest
import torch

from node.swarm.outer import initial_state, outer_step, pseudo_gradient


def test_two_nesterov_steps_match_a_hand_computation():
    state = initial_state([torch.tensor([1.0, -2.0])])
    lr, mu = 0.5, 0.9
    # step 1: m = 0.9*0 + d = [0.2, -0.4]; update = d + 0.9*m = [0.38, -0.76]; g = g - 0.5*update
    state = outer_step(state, [torch.tensor([0.2, -0.4])], lr, mu)
    assert torch.allclose(state.momentum[0], torch.tensor([0.2, -0.4]))
    assert torch.allclose(state.params[0], torch.tensor([1.0 - 0.19, -2.0 + 0.38]))
    # step 2: d = [0.1, 0.0]; m = 0.9*[0.2,-0.4] + d = [0.28, -0.36]; update = d + 0.9*m = [0.352, -0.324]
    state = outer_step(state, [torch.tensor([0.1, 0.0])], lr, mu)
    assert torch.allclose(state.momentum[0], torch.tensor([0.28, -0.36]))
    assert torch.allclose(state.params[0], torch.tensor([0.81 - 0.176, -1.62 + 0.162]))
    assert state.step == 2


def test_equals_torch_sgd_with_nesterov():
    gen = torch.Generator().manual_seed(0)
    start = [torch.randn(5, 3, generator=gen), torch.randn(7, generator=gen)]
    ours = initial_state(start)
    reference = [p.clone().requires_grad_(True) for p in start]
    sgd = torch.optim.SGD(reference, lr=0.7, momentum=0.9, nesterov=True)
    for _ in range(5):
        delta = [torch.randn(p.shape, generator=gen) for p in start]
        ours = outer_step(ours, delta, lr=0.7, momentum=0.9)
        for p, d in zip(reference, delta):
            p.grad = d.clone()
        sgd.step()
    for mine, theirs in zip(ours.params, reference):
        assert torch.allclose(mine, theirs.detach(), atol=1e-6)


def test_lr_one_without_momentum_is_plain_parameter_averaging():
    shared = [torch.tensor([1.0, 1.0])]
    locals_ = [[torch.tensor([0.0, 2.0])], [torch.tensor([1.0, 3.0])]]
    deltas = [pseudo_gradient(shared, local) for local in locals_]
    mean_delta = [sum(d[0] for d in deltas) / 2]
    state = outer_step(initial_state(shared), mean_delta, lr=1.0, momentum=0.0)
    assert torch.equal(state.params[0], torch.tensor([0.5, 2.5]))  # the mean of the two local models


def test_inputs_are_not_modified_and_bad_settings_are_refused():
    state = initial_state([torch.ones(3)])
    delta = [torch.ones(3)]
    outer_step(state, delta, lr=0.7, momentum=0.9)
    assert torch.equal(state.params[0], torch.ones(3)) and torch.equal(delta[0], torch.ones(3))
    with pytest.raises(ValueError, match="learning rate"):
        outer_step(state, delta, lr=0.0, momentum=0.9)
    with pytest.raises(ValueError, match="momentum"):
        outer_step(state, delta, lr=0.7, momentum=1.0)
