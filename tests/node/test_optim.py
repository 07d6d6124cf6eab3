"""ClippedAdamW: the averaged gradients' total norm is capped before AdamW uses them."""

import torch

from node.train.optim import ClippedAdamW


def _one_step(max_grad_norm: float, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    p = torch.nn.Parameter(torch.zeros(4))
    opt = ClippedAdamW([p], max_grad_norm, lr=0.1, betas=(0.9, 0.95), weight_decay=0.0)
    p.grad = grad.clone()
    opt.step()
    return p.detach(), opt.state[p]["exp_avg_sq"]


def test_a_huge_gradient_is_scaled_to_the_norm_before_adam_remembers_it():
    grad = torch.tensor([300.0, 400.0, 0.0, 0.0])  # norm 500
    _, v = _one_step(1.0, grad)
    assert torch.allclose(v, 0.05 * (grad / 500) ** 2)  # Adam's second moment saw the clipped gradient (norm 1)
    _, v_unclipped = _one_step(0.0, grad)  # 0: clipping off
    assert torch.allclose(v_unclipped, 0.05 * grad**2)


def test_a_gradient_within_the_norm_is_left_as_it_is():
    grad = torch.tensor([0.3, 0.4, 0.0, 0.0])  # norm 0.5
    clipped, _ = _one_step(1.0, grad)
    plain, _ = _one_step(0.0, grad)
    assert torch.equal(clipped, plain)
