"""The mathematics behind each regularizer, on tiny functions (docs/regularization.md, "Tests")."""

import itertools
import math

import pytest
import torch
from torch import nn

from regularizers import (
    clip_coefficient,
    clip_hard_,
    clip_soft_,
    fgm_perturbation,
    kl_with_logits,
    output_jacobian_sq_norm,
    project_l2_ball,
    random_projection_penalty,
    smoothness_monte_carlo,
    virtual_adversarial_perturbation,
    weissi_decoupled_step_,
    weissi_penalty,
)


def _mlp(d_in=4, d_hidden=16, d_out=3, act=nn.Tanh, bias=True):
    return nn.Sequential(
        nn.Linear(d_in, d_hidden, bias=bias), act(), nn.Linear(d_hidden, d_out, bias=bias)
    ).double()


def test_noise_monte_carlo_approaches_half_sigma2_lambda_gradient_norm():
    # MSE: lambda_i = 2, so E||f(x+eps) - f(x)||^2 -> 1/2 * sigma^2 * 2 * sum_i ||grad f_i||^2.
    f, x, sigma = _mlp(), torch.randn(4, dtype=torch.float64), 1e-3
    mc = smoothness_monte_carlo(f, x, sigma, n_samples=40_000)
    predicted = 0.5 * sigma**2 * 2 * output_jacobian_sq_norm(f, x)
    assert mc == pytest.approx(float(predicted), rel=0.03)


def test_random_projection_is_unbiased_exactly_over_all_sign_vectors():
    f = _mlp()
    x = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    out = f(x)  # (2, 3): two independent examples
    exact = sum(output_jacobian_sq_norm(f, x[b].detach()) for b in range(2))
    signs = [
        torch.tensor(s, dtype=torch.float64).view(2, 3)
        for s in itertools.product([-1.0, 1.0], repeat=6)
    ]
    estimates = [
        random_projection_penalty(out, x, eta=e, create_graph=False, retain_graph=True)
        for e in signs
    ]
    assert torch.stack(estimates).mean() == pytest.approx(float(exact), rel=1e-10)
    # a single draw is not the exact value (it is a noisy estimate)
    assert not all(float(e) == pytest.approx(float(exact), rel=1e-6) for e in estimates)


def test_random_projection_weighted_monte_carlo_mean():
    f = _mlp()
    x = torch.randn(1, 4, dtype=torch.float64, requires_grad=True)
    out = f(x)
    lam = torch.tensor([[2.0, 0.5, 1.0]], dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda v: f(v.unsqueeze(0)).squeeze(0), x[0].detach())
    exact = (lam[0].unsqueeze(1) * jac**2).sum()
    est = torch.stack(
        [
            random_projection_penalty(out, x, weights=lam, create_graph=False, retain_graph=True)
            for _ in range(3000)
        ]
    ).mean()
    assert float(est) == pytest.approx(float(exact), rel=0.05)


@pytest.mark.parametrize("scope", ["matrix", "output"])
def test_fgm_perturbation_norm_equals_epsilon(scope):
    g = torch.randn(5, 7, 3)
    delta = fgm_perturbation(g, 0.5, scope)
    norms = delta.norm() if scope == "matrix" else delta.flatten(1).norm(dim=1)
    assert torch.allclose(norms, torch.full_like(norms, 0.5), atol=1e-6)
    cos = torch.nn.functional.cosine_similarity(delta.flatten(1), g.flatten(1), dim=1)
    if scope == "matrix":  # one global direction
        cos = torch.nn.functional.cosine_similarity(delta.flatten(), g.flatten(), dim=0)
    assert torch.allclose(cos, torch.ones_like(cos), atol=1e-5)


def test_project_l2_ball():
    d = torch.randn(4, 6) * 10
    assert project_l2_ball(d, 1.0, "matrix").norm() == pytest.approx(1.0, rel=1e-6)
    small = torch.randn(4, 6) * 1e-3
    assert torch.equal(project_l2_ball(small, 1.0, "matrix"), small)
    per = project_l2_ball(d, 1.0, "output").norm(dim=1)
    assert torch.all(per <= 1.0 + 1e-6)


def _dominant_eigvec(h):
    vals, vecs = torch.linalg.eigh(h)
    return vecs[:, -1]


def test_vat_direction_aligns_with_dominant_eigenvector_of_quadratic():
    torch.manual_seed(1)
    q, _ = torch.linalg.qr(torch.randn(8, 8, dtype=torch.float64))
    h = q @ torch.diag(torch.tensor([10.0, 2, 1, 1, 0.5, 0.5, 0.1, 0.1], dtype=torch.float64)) @ q.T
    top = _dominant_eigvec(h)

    def divergence(d):  # 1/2 d^T H d, shape (1, 8) perturbation
        return 0.5 * (d @ h.to(d.dtype) * d).sum()

    like = torch.zeros(1, 8)

    def mean_cos(iters):
        cos = [
            abs(
                float(
                    torch.nn.functional.cosine_similarity(
                        virtual_adversarial_perturbation(
                            divergence, like, 1.0, 1e-2, iters, "output"
                        )[0].double(),
                        top,
                        0,
                    )
                )
            )
            for _ in range(20)
        ]
        return sum(cos) / len(cos)

    assert mean_cos(0) < 0.6  # a random direction
    assert mean_cos(1) > 0.85  # one power iteration, eigen-gap 5
    assert mean_cos(6) > 0.999


def test_vat_direction_on_softmax_model_matches_kl_hessian():
    torch.manual_seed(2)
    w = torch.randn(4, 6, dtype=torch.float64)
    x = torch.randn(1, 6, dtype=torch.float64)
    target = x @ w.T
    p = torch.softmax(target[0], -1)
    hessian = w.T @ (torch.diag(p) - torch.outer(p, p)) @ w  # of KL(p || softmax(W(x+d))) at d=0
    top = _dominant_eigvec(hessian)

    def divergence(d):
        return kl_with_logits(target, (x + d.double()) @ w.T)

    r = virtual_adversarial_perturbation(divergence, torch.zeros(1, 6), 2.0, 1e-3, 10, "output")
    assert r.norm() == pytest.approx(2.0, rel=1e-5)
    assert abs(float(torch.nn.functional.cosine_similarity(r[0].double(), top, 0))) > 0.99


def test_kl_with_logits_direction_and_detached_target():
    t = torch.randn(3, 5, requires_grad=True)
    z = torch.randn(3, 5)
    p, q = torch.softmax(t, -1), torch.softmax(z, -1)
    expected = (p * (p.log() - q.log())).sum(-1).mean()
    kl = kl_with_logits(t, z)
    assert float(kl) == pytest.approx(float(expected.detach()), rel=1e-5)
    assert not kl.requires_grad  # the clean target carries no gradient


@torch.no_grad()
def test_weissi_log_term_invariant_under_layer_rescaling_but_l2_is_not():
    torch.manual_seed(3)
    net = _mlp(5, 8, 3, act=nn.ReLU, bias=False)
    x = torch.randn(10, 5, dtype=torch.float64)
    before_out, before_log = net(x), weissi_penalty(net, 1.0, 0.0)
    before_full = weissi_penalty(net, 1.0, 0.3)
    before_l2 = sum((p**2).sum() for p in net.parameters())
    c = 3.7
    with torch.no_grad():
        net[0].weight.mul_(c)
        net[2].weight.div_(c)
    assert torch.allclose(net(x), before_out, atol=1e-10)
    assert float(weissi_penalty(net, 1.0, 0.0)) == pytest.approx(float(before_log), abs=1e-6)
    assert float(weissi_penalty(net, 1.0, 0.3)) == pytest.approx(float(before_full), abs=1e-6)
    after_l2 = sum((p**2).sum() for p in net.parameters())
    assert abs(float(after_l2 - before_l2)) > 1.0


def test_weissi_gradient_identity_and_decoupled_step():
    w = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    lam1 = 0.7
    (g,) = torch.autograd.grad(weissi_penalty(None, lam1, 0.0, [w]), w)
    assert torch.allclose(g, lam1 * w / w.norm() ** 2)
    # the L1-direction term is scale invariant: its gradient is orthogonal to W
    (g2,) = torch.autograd.grad(weissi_penalty(None, 0.0, 1.0, [w]), w)
    assert abs(float((g2 * w.detach()).sum())) < 1e-5 * float(g2.norm() * w.detach().norm())
    p = nn.Parameter(w.detach().clone())
    weissi_decoupled_step_([p], lr=0.1, lambda1=lam1, lambda2=0.0)
    assert torch.allclose(p.data, w.detach() - 0.1 * lam1 * w.detach() / w.detach().norm() ** 2)


@torch.no_grad()
def test_weissi_default_parameters_skip_biases_and_norms():
    net = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 2))
    with torch.no_grad():
        net[1].weight.mul_(5)  # a large norm gain must not matter
    manual = sum(torch.log(m.weight.norm()) for m in (net[0], net[2]))
    assert float(weissi_penalty(net, 1.0, 0.0)) == pytest.approx(float(manual), rel=1e-6)


def test_clipping_sandwich_inequality():
    norms = torch.logspace(-3, 3, 200)
    for gamma in (0.1, 1.0, 10.0):
        hard = clip_coefficient(norms, gamma, "hard")
        soft = clip_coefficient(norms, gamma, "soft")
        assert torch.all(0.5 * hard <= soft + 1e-7)
        assert torch.all(soft <= hard + 1e-7)


@pytest.mark.parametrize("clip", [clip_hard_, clip_soft_])
def test_clipped_update_norm_never_exceeds_lr_gamma(clip):
    net, lr, gamma = _mlp(), 0.1, 0.5
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    for scale in (1e-3, 1.0, 1e3):
        x = torch.randn(8, 4, dtype=torch.float64)
        before = [p.detach().clone() for p in net.parameters()]
        opt.zero_grad()
        (scale * net(x).pow(2).sum()).backward()
        clip(net.parameters(), gamma)
        opt.step()
        step = torch.sqrt(
            sum(((p.detach() - b) ** 2).sum() for p, b in zip(net.parameters(), before))
        )
        assert float(step) <= lr * gamma * (1 + 1e-6)


def test_clip_returns_global_not_per_tensor_norm():
    a, b = nn.Parameter(torch.zeros(3)), nn.Parameter(torch.zeros(4))
    a.grad, b.grad = torch.full((3,), 2.0), torch.full((4,), 1.0)
    norm = clip_hard_([a, b], 1.0)
    assert float(norm) == pytest.approx(math.sqrt(12 + 4))
    assert float(torch.sqrt((a.grad**2).sum() + (b.grad**2).sum())) == pytest.approx(1.0, rel=1e-5)


@pytest.mark.parametrize("mode", ["hard", "soft"])
def test_theta4_fixed_step_diverges_clipped_converges(mode):
    # f = theta^4 is (L0, L1)-smooth but not L-smooth; eta = 0.01 is a fine step near the
    # minimum (curvature 12 theta^2 < 2/eta for |theta| < 4) but explodes from theta0 = 10.
    eta, gamma, theta0 = 0.01, 1.0, 10.0
    theta = torch.tensor(theta0, dtype=torch.float64)
    for _ in range(20):
        theta = theta - eta * 4 * theta**3
    assert not torch.isfinite(theta) or abs(float(theta)) > 1e6

    theta = torch.tensor(theta0, dtype=torch.float64)
    for _ in range(3000):
        g = 4 * theta**3
        theta = theta - eta * g * clip_coefficient(g.abs(), gamma, mode).double()
    assert abs(float(theta)) < 0.5
