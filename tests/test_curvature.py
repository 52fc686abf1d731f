"""Approximate curvature operators against the exact operator, brute force, and curvlinops as an oracle."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, jacrev

import gif_lite
from gif_lite import EKFAC, KFAC, LowRank, Objective, StochasticHessian
from gif_lite.checks import ModelState

DT = torch.float64


def _cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 3, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(3, 2, 2, stride=1, padding=0, bias=False),
        nn.Tanh(),
        nn.Flatten(),
        nn.Linear(2 * 3 * 3, 5),
        nn.Tanh(),
        nn.Linear(5, 3),
    ).to(DT)


def _images(n: int = 24, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 8, 8, generator=gen, dtype=DT), torch.randint(0, 3, (n,), generator=gen)


def _mlp(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3)).to(DT)


def _flat_model_fn(model: nn.Module, x: torch.Tensor):
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    shapes = [p.shape for p in model.parameters() if p.requires_grad]

    def f(theta: torch.Tensor) -> torch.Tensor:
        ps, start = {}, 0
        for n, s in zip(names, shapes):
            k = int(torch.Size(s).numel())
            ps[n] = theta[start : start + k].view(s)
            start += k
        return functional_call(model, ps, (x,))

    return f


def _dense_ggn(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(1/n) sum_i J_i^T (diag p_i - p_i p_i^T) J_i from full Jacobians: the exact cross-entropy GGN."""
    f = _flat_model_fn(model, x)
    theta = gif_lite.flat_params(model)
    jac = jacrev(f)(theta)  # (n, C, P)
    p = torch.softmax(f(theta), dim=1)
    lam = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]
    return torch.einsum("nci,ncd,ndj->ij", jac, lam, jac) / x.shape[0]


def _block_index(layer) -> torch.Tensor:
    """Flat indices of a layer's block in K-FAC's (out, in + bias) order."""
    idx = []
    w_in = layer.in_dim - (1 if layer.b_off >= 0 else 0)
    for o in range(layer.out_dim):
        idx += [layer.w_off + o * w_in + i for i in range(w_in)]
        if layer.b_off >= 0:
            idx.append(layer.b_off + o)
    return torch.tensor(idx)


# ------------------------------------------------------------------------------------ K-FAC / EK-FAC
@pytest.mark.parametrize("fisher", ["type-2", "empirical"])
@pytest.mark.parametrize("cls", ["KFAC", "EKFAC"])
def test_kfac_and_ekfac_match_curvlinops(cls: str, fisher: str) -> None:
    curvlinops = pytest.importorskip("curvlinops")
    model, (x, y) = _cnn(), _images()
    params = list(model.parameters())
    oracle_cls = {"KFAC": curvlinops.KFACLinearOperator, "EKFAC": curvlinops.EKFACLinearOperator}[cls]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        oracle = oracle_cls(
            model,
            nn.CrossEntropyLoss(),
            params,
            [(x[:10], y[:10]), (x[10:], y[10:])],
            fisher_type=fisher,
            kfac_approx="expand",
            separate_weight_and_bias=False,
            check_deterministic=False,
        )
        expected = oracle @ torch.eye(sum(p.numel() for p in params), dtype=DT)
    ours = {"KFAC": KFAC, "EKFAC": EKFAC}[cls](model, [(x[:10], y[:10]), (x[10:], y[10:])], fisher=fisher)
    got = ours.hessian()
    assert torch.linalg.norm(got - expected) <= 1e-10 * torch.linalg.norm(expected)


def test_kfac_factors_equal_brute_force_covariances() -> None:
    """A = mean of [a; 1][a; 1]^T and S = mean over examples of sum_c g_c g_c^T, one example at a time."""
    model, n = _mlp(), 7
    gen = torch.Generator().manual_seed(3)
    x, y = torch.randn(n, 4, generator=gen, dtype=DT), torch.randint(0, 3, (n,), generator=gen)
    op = KFAC(model, (x, y))
    lin1, act, lin2 = model
    a_sum = [torch.zeros(5, 5, dtype=DT), torch.zeros(6, 6, dtype=DT)]
    s_sum = [torch.zeros(5, 5, dtype=DT), torch.zeros(3, 3, dtype=DT)]
    for i in range(n):
        xi = x[i : i + 1]
        z1 = lin1(xi)
        h = act(z1)
        z2 = lin2(h)
        p = torch.softmax(z2, dim=1)[0].detach()
        for k, inp in enumerate((xi[0], h[0].detach())):
            a = torch.cat([inp, torch.ones(1, dtype=DT)])
            a_sum[k] += torch.outer(a, a)
        for c in range(3):
            s = p[c].sqrt() * (p - torch.eye(3, dtype=DT)[c])  # Lambda = sum_c s_c s_c^T
            g1, g2 = torch.autograd.grad(z2[0] @ s, (z1, z2), retain_graph=True)
            s_sum[0] += torch.outer(g1[0], g1[0])
            s_sum[1] += torch.outer(g2[0], g2[0])
    factors = op.factors()
    for k, name in enumerate(("0", "2")):
        a, s = factors[name]
        torch.testing.assert_close(a, a_sum[k] / n, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(s, s_sum[k] / n, rtol=1e-12, atol=1e-14)
    # the Lambda decomposition really is the softmax cross-entropy Hessian in the logits
    p = torch.softmax(model(x[:1]), 1)[0].detach()
    lam = sum(torch.outer(v, v) for v in (p[c].sqrt() * (p - torch.eye(3, dtype=DT)[c]) for c in range(3)))
    hess = torch.autograd.functional.hessian(
        lambda z: F.cross_entropy(z[None], y[:1]), model(x[:1])[0].detach()
    )
    torch.testing.assert_close(lam, hess)


def test_ekfac_diagonal_is_exact_in_its_eigenbasis() -> None:
    model, (x, y) = _cnn(), _images()
    op = EKFAC(model, (x, y))
    ggn = _dense_ggn(model, x)
    kfac_worse = 0
    for layer in op.layers:
        idx = _block_index(layer)
        q = torch.kron(layer.q_s, layer.q_a)
        rotated = q.T @ ggn[idx][:, idx] @ q
        exact_diag = torch.diagonal(rotated).reshape(layer.out_dim, -1)
        torch.testing.assert_close(op.eigenvalues()[layer.name], exact_diag, rtol=1e-9, atol=1e-13)
        kfac_d = torch.outer(torch.linalg.eigvalsh(layer.s), torch.linalg.eigvalsh(layer.a))
        kfac_worse += int((kfac_d - exact_diag).norm() > 1e-6 * exact_diag.norm())
    assert kfac_worse >= 1  # K-FAC's diagonal differs: the correction is not a no-op here


def test_one_linear_layer_under_mse_kfac_is_the_hessian() -> None:
    """Linear model + MSE: the loss Hessian in the outputs is constant, so S (x) A is the exact Hessian."""
    torch.manual_seed(0)
    model = nn.Linear(6, 3).to(DT)
    gen = torch.Generator().manual_seed(2)
    x, y = torch.randn(40, 6, generator=gen, dtype=DT), torch.randn(40, 3, generator=gen, dtype=DT)
    exact = Objective(model, F.mse_loss, (x, y), weight_decay=0.01).hessian()
    for cls in (KFAC, EKFAC):
        op = cls(model, (x, y), loss="mse", weight_decay=0.01)
        torch.testing.assert_close(op.hessian(), exact, rtol=1e-10, atol=1e-12)


def test_kfac_inverse_is_exact_and_mc_fisher_is_seeded() -> None:
    model, (x, y) = _cnn(), _images()
    op = EKFAC(model, (x, y), weight_decay=1e-3)
    dense = op.hessian()
    g = torch.randn(op.num_params, generator=torch.Generator().manual_seed(0), dtype=DT)
    expected = torch.linalg.solve(dense + 0.05 * torch.eye(op.num_params, dtype=DT), g)
    torch.testing.assert_close(op.inverse_hvp(g, damping=0.05), expected, rtol=1e-8, atol=1e-10)
    a = KFAC(model, (x, y), fisher="mc", seed=5).hessian()
    b = KFAC(model, (x, y), fisher="mc", seed=5).hessian()
    c = KFAC(model, (x, y), fisher="mc", seed=6).hessian()
    assert torch.equal(a, b) and not torch.equal(a, c)


# ------------------------------------------------------------------------------------ low rank
def test_arnoldi_at_full_rank_is_the_exact_operator() -> None:
    model, (x, y) = _mlp(), (torch.randn(30, 4, dtype=DT), torch.randint(0, 3, (30,)))
    obj = Objective(model, F.cross_entropy, (x, y), weight_decay=1e-3)
    op = LowRank(obj, rank=obj.num_params, steps=obj.num_params)
    exact = obj.hessian()
    torch.testing.assert_close(op.hessian(), exact, rtol=1e-8, atol=1e-10)
    assert op.build_hvps == obj.num_params
    g = torch.randn(obj.num_params, dtype=DT)
    torch.testing.assert_close(
        op.inverse_hvp(g, 0.1), torch.linalg.solve(exact + 0.1 * torch.eye(len(g), dtype=DT), g)
    )


def test_arnoldi_low_rank_keeps_the_largest_eigenvalues() -> None:
    model, (x, y) = _mlp(), (torch.randn(30, 4, dtype=DT), torch.randint(0, 3, (30,)))
    obj = Objective(model, F.cross_entropy, (x, y))
    eig = torch.linalg.eigvalsh(obj.hessian())
    top = eig[eig.abs().argsort(descending=True)[:3]]
    op = LowRank(obj, rank=3, steps=40)
    torch.testing.assert_close(op.eigenvalues, top, rtol=1e-6, atol=1e-9)
    assert torch.linalg.matrix_rank(op.hessian()) == 3


# ------------------------------------------------------------------------------------ stochastic
def test_stochastic_hessian_full_batch_is_exact_and_per_call_is_unbiased() -> None:
    model, (x, y) = _mlp(), (torch.randn(12, 4, dtype=DT), torch.randint(0, 3, (12,)))
    obj = Objective(model, F.cross_entropy, (x, y), weight_decay=0.01)
    v = torch.randn(obj.num_params, dtype=DT)
    full = StochasticHessian(model, F.cross_entropy, (x, y), batch_size=12, weight_decay=0.01)
    torch.testing.assert_close(full.hvp(v), obj.hvp(v))
    # per call: the average over every 3-subset of the 12 examples is H v; the Monte Carlo mean converges
    mb = StochasticHessian(model, F.cross_entropy, (x, y), batch_size=3, weight_decay=0.01, seed=0)
    draws = torch.stack([mb.hvp(v) for _ in range(400)])
    err = (draws.mean(0) - obj.hvp(v)).norm()
    assert err < 4 * draws.std(0).norm() / 20 and not torch.allclose(draws[0], draws[1])
    fixed = StochasticHessian(model, F.cross_entropy, (x, y), batch_size=3, resample="fixed")
    assert torch.equal(fixed.hvp(v), fixed.hvp(v))


def test_lissa_on_minibatch_hessians_approaches_exact_influence() -> None:
    torch.manual_seed(0)
    model = nn.Linear(5, 3).to(DT)
    x, y = torch.randn(200, 5, dtype=DT), torch.randint(0, 3, (200,))
    obj = Objective(model, F.cross_entropy, (x, y), weight_decay=0.1)
    g = torch.randn(obj.num_params, dtype=DT)
    exact = gif_lite.influence(obj, g, solver="direct").delta
    op = StochasticHessian(model, F.cross_entropy, (x, y), batch_size=50, weight_decay=0.1, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gif_lite.ConvergenceWarning)
        est = gif_lite.influence(op, g, solver="lissa", max_iter=300, scale=2.0).delta
    assert F.cosine_similarity(est, exact, dim=0) > 0.98


# ------------------------------------------------------------------------------------ estimators on operators
OPERATORS = ("objective", "kfac", "ekfac", "lowrank", "subsampled", "dense")


def _operator(name: str) -> tuple[Objective, gif_lite.HessianOperator]:
    """The CNN's objective and one operator built from it (the one form: from the Objective)."""
    model, (x, y) = _cnn(), _images()
    obj = Objective(model, F.cross_entropy, (x, y), weight_decay=1e-3)
    build = {
        "objective": lambda: obj,
        "kfac": lambda: KFAC(obj),
        "ekfac": lambda: EKFAC(obj),
        "lowrank": lambda: LowRank(obj, rank=15, steps=40),
        "subsampled": lambda: StochasticHessian(obj, 8, resample="fixed"),
        "dense": lambda: gif_lite.DenseOperator(EKFAC(obj).hessian(), objective=obj),
    }
    return obj, build[name]()


def _close(name: str, a: torch.Tensor, b: torch.Tensor, rtol: float = 1e-6) -> None:
    assert (a - b).norm() <= rtol * b.norm(), (name, float((a - b).norm() / b.norm()))


@pytest.mark.parametrize("name", OPERATORS)
def test_estimators_on_each_operator_equal_dense_algebra(name: str) -> None:
    obj, op = _operator(name)
    assert isinstance(op, gif_lite.HessianOperator) and op.objective is obj
    c = op.hessian()
    k = op.num_params
    g = torch.randn(k, generator=torch.Generator().manual_seed(4), dtype=DT)
    p = torch.arange(0, k, 3)
    lam = 0.05
    cd = c + lam * torch.eye(k, dtype=DT)

    if_exact = torch.linalg.solve(cd, g)
    _close(name, gif_lite.influence(op, g, solver="minres", damping=lam).delta, if_exact)
    _close(name, gif_lite.influence(op, g, solver="direct", damping=lam).delta, if_exact, 1e-9)
    _close(name, gif_lite.projected_influence(op, g, p, damping=lam).delta, if_exact[p])
    _close(
        name, gif_lite.frozen_influence(op, g, p, damping=lam).delta, torch.linalg.solve(cd[p][:, p], g[p])
    )
    gif = gif_lite.generalized_influence(op, g, p, damping=lam)
    _close(name, gif.delta, torch.linalg.pinv(cd[:, p]) @ g)
    _close(name, gif_lite.generalized_influence(op, g, p, solver="direct", damping=lam).delta, gif.delta)
    # second order: H from the operator, H_U from the group's exact objective
    x, y = next(iter(obj.batches))
    group = Objective(obj.model, F.cross_entropy, (x[:3], y[:3]), weight_decay=1e-3)
    q, g_u = 3 / 21, group.gradient()
    x1 = torch.linalg.solve(cd, g_u)
    h_u = group.hessian()
    second = q * x1 + q * q * torch.linalg.solve(cd, (h_u - cd) @ x1)
    got = gif_lite.second_order_influence(op, group, 3 / 24, solver="direct", damping=lam).delta
    _close(name, got, second, 1e-8)
    # the estimators registry on an operator: PIF is the cached IF solve, sliced
    est = gif_lite.Estimators({"solver": "direct", "damping": lam})
    _close(name, est("PIF", op, g, p).delta, if_exact[p], 1e-9)


@pytest.mark.parametrize("name", OPERATORS)
def test_attribution_on_each_operator_equals_dense_algebra(name: str) -> None:
    """``removal_effects(op, test)`` and ``self_influence(op)``: every estimator, direct and iterative,
    equals ``t_j . delta_i`` with ``delta_i`` from dense algebra on ``op.hessian() + damping I``."""
    obj, op = _operator(name)
    lam = 0.05
    cd = op.hessian() + lam * torch.eye(op.num_params, dtype=DT)
    test = _images(5, seed=9)
    grads = torch.cat([g for _, g in gif_lite.example_gradients(obj)])
    rhs = (grads + obj.weight_decay * obj.theta()) / (obj.num_examples - 1)  # n x k
    t = torch.cat([g for _, g in gif_lite.example_gradients(obj, test)])
    p = torch.arange(1, op.num_params, 4)
    deltas = {
        "IF": lambda: torch.linalg.solve(cd, rhs.T),
        "FIF": lambda: torch.linalg.solve(cd[p][:, p], rhs.T[p]),
        "PIF": lambda: torch.linalg.solve(cd, rhs.T)[p],
        "GIF": lambda: torch.linalg.pinv(cd[:, p]) @ rhs.T,
    }
    for est, solvers in (("IF", ("direct", "minres")), ("FIF", ("direct", "minres")),
                         ("PIF", ("direct", "minres")), ("GIF", ("direct", "lsqr"))):  # fmt: skip
        sub = None if est == "IF" else p
        delta = deltas[est]()
        expect = (t if sub is None else t[:, p]) @ delta
        expect_self = ((grads if sub is None else grads[:, p]) * delta.T).sum(1)
        for solver in solvers:
            if name == "subsampled" and solver != "direct" and est != "IF":
                continue  # its products run one double backward per row: one iterative case is enough
            kw = {"damping": lam, "tol": 1e-10} if solver != "direct" else {"damping": lam}
            got = gif_lite.removal_effects(op, test, sub, est, solver, **kw)
            _close(f"{name} {est} {solver}", got, expect)
            _close(
                f"{name} {est} {solver} self",
                gif_lite.self_influence(op, sub, est, solver, **kw),
                expect_self,
            )


def test_ekfac_attribution_is_one_call_and_uses_the_exact_inverse() -> None:
    """``removal_effects(EKFAC(obj), test, damping=gamma)`` solves with EK-FAC's Kronecker inverse (no
    products with C at all), the same scores as ``inverse_hvp`` applied by hand."""
    obj, op = _operator("ekfac")
    test = _images(4, seed=5)
    calls = op.hvp_calls
    scores = gif_lite.removal_effects(op, test, damping=0.1)
    assert op.hvp_calls == calls
    t = torch.cat([g for _, g in gif_lite.example_gradients(obj, test)])
    grads = torch.cat([g for _, g in gif_lite.example_gradients(obj)])
    rhs = (grads + obj.weight_decay * obj.theta()) / (obj.num_examples - 1)
    _close("ekfac", scores, op.inverse_hvp(t, 0.1) @ rhs.T, 1e-12)


def test_operators_from_an_objective_equal_those_from_its_parts() -> None:
    model, (x, y) = _cnn(), _images()
    obj = Objective(model, F.cross_entropy, (x, y), weight_decay=1e-3)
    assert torch.equal(KFAC(obj).hessian(), KFAC(model, (x, y), weight_decay=1e-3).hessian())
    assert torch.equal(EKFAC(obj).hessian(), EKFAC(model, (x, y), weight_decay=1e-3).hessian())
    a = StochasticHessian(obj, 8, "fixed", 3).hessian()
    b = StochasticHessian(model, F.cross_entropy, (x, y), 8, 1e-3, resample="fixed", seed=3).hessian()
    assert torch.equal(a, b)
    mse = Objective(model, F.mse_loss, (x, F.one_hot(y, 3).to(DT)))
    assert KFAC(mse).loss == "mse"
    with pytest.raises(gif_lite.GifLiteError, match="loss_fn"):
        KFAC(Objective(model, lambda o, t: F.nll_loss(F.log_softmax(o, 1), t), (x, y)))
    with pytest.raises(gif_lite.GifLiteError, match="drop data="):
        KFAC(obj, (x, y))
    with pytest.raises(gif_lite.GifLiteError, match="built without an Objective"):
        _ = gif_lite.DenseOperator(obj.hessian()).objective
    with pytest.raises(gif_lite.GifLiteTypeError, match="lacks"):
        gif_lite.influence(object(), torch.zeros(3))  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------ bad input
def test_bad_input_is_refused_with_clear_messages() -> None:
    model, (x, y) = _cnn(), _images()
    with pytest.raises(ValueError, match="fisher"):
        KFAC(model, (x, y), fisher="exact")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="loss"):
        KFAC(model, (x, y), loss="hinge")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mc"):
        KFAC(model, (x, y.to(DT)), loss="mse", fisher="mc")
    with pytest.raises(ValueError, match="weight_decay"):
        KFAC(model, (x, y), weight_decay=-1.0)
    bn = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(72, 3)).to(DT).eval()
    with pytest.raises(ValueError, match=r"1\.weight.*requires_grad_\(False\)"):
        KFAC(bn, (x, y))
    for p in bn[1].parameters():
        p.requires_grad_(False)
    assert KFAC(bn, (x, y)).num_params == 2 * 9 + 2 + 72 * 3 + 3  # frozen BatchNorm is fine
    grouped = nn.Sequential(nn.Conv2d(1, 2, 3, groups=1), nn.Conv2d(2, 2, 3, groups=2), nn.Flatten()).to(DT)
    with pytest.raises(ValueError, match="groups=1"):
        KFAC(grouped, (x, y))
    shared = nn.Linear(3, 3).to(DT)
    with pytest.raises(ValueError, match="more than once"):
        KFAC(nn.Sequential(shared, nn.Tanh(), shared), (torch.randn(4, 3, dtype=DT), torch.arange(4) % 3))
    op = KFAC(model, (x, y))
    with pytest.raises(ValueError, match="v"):
        op.hvp(torch.zeros(op.num_params + 1, dtype=DT))
    with pytest.raises(ValueError, match="damping"):
        op.inverse_hvp(torch.zeros(op.num_params, dtype=DT), damping=-0.1)
    obj = Objective(model, F.cross_entropy, (x, y))
    with pytest.raises(ValueError, match="rank"):
        LowRank(obj, rank=0)
    with pytest.raises(ValueError, match="steps"):
        LowRank(obj, rank=10, steps=5)
    with pytest.raises(ValueError, match="batch_size"):
        StochasticHessian(model, F.cross_entropy, (x, y), batch_size=0)
    with pytest.raises(ValueError, match="resample"):
        StochasticHessian(model, F.cross_entropy, (x, y), 4, resample="sometimes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="obj"):
        gif_lite.influence("not an objective", torch.zeros(3))  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------ what operators rely on
def test_kfac_refuses_tied_weights_and_models_in_a_batch_dependent_mode() -> None:
    x, y = _images()
    tied = _cnn()
    twin = nn.Linear(5, 3).to(DT)
    twin.weight = tied[-1].weight  # two layers, one weight: overlapping blocks
    model = nn.Sequential(tied, nn.Tanh(), twin)
    with pytest.raises(gif_lite.GifLiteError, match="shares a parameter"):
        KFAC(model, (x, y))
    bn = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(72, 3)).to(DT)
    bn[1].requires_grad_(False)
    stats = bn[1].running_mean.clone()
    with pytest.raises(gif_lite.GifLiteError, match=r"eval\(\)"):
        EKFAC(bn.train(), (x, y))
    assert torch.equal(bn[1].running_mean, stats)  # refused before any pass rewrote the statistics


def test_a_resampling_operator_is_refused_where_one_fixed_matrix_is_needed() -> None:
    obj, _ = _operator("objective")
    op = StochasticHessian(obj, 8)  # per_call
    g = torch.randn(op.num_params, generator=torch.Generator().manual_seed(2), dtype=DT)
    for solve in (
        lambda: gif_lite.influence(op, g, solver="minres"),
        lambda: gif_lite.influence(op, g, solver="direct"),
        lambda: gif_lite.generalized_influence(op, g, torch.arange(5)),
        lambda: gif_lite.removal_effects(op, _images(3, seed=4), damping=0.1),
        lambda: op.hessian(),
    ):
        with pytest.raises(gif_lite.GifLiteError, match="resample='fixed'"):
            solve()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gif_lite.ConvergenceWarning)
        gif_lite.influence(op, g, solver="lissa", damping=1.0, max_iter=5)  # LiSSA is made for it


def test_a_singular_operator_without_damping_is_not_reported_converged() -> None:
    obj, _ = _operator("objective")
    op = LowRank(obj, rank=5, steps=10)  # rank 5 of 200-odd: singular
    g = torch.randn(op.num_params, generator=torch.Generator().manual_seed(3), dtype=DT)
    with pytest.warns(gif_lite.ConvergenceWarning, match="singular"):
        res = gif_lite.influence(op, g, solver="direct")
    assert not res.converged and res.residual > 0.1
    assert gif_lite.influence(op, g, solver="direct", damping=0.1).converged


def test_no_operator_changes_the_model_it_stands_for() -> None:
    """Built, multiplied, inverted and densified on a BatchNorm model in eval mode: parameters, buffers,
    modes, flags and ``.grad`` are as before (K-FAC's hooks are removed, its passes rewrite nothing)."""
    x, y = _images()
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(72, 3)).to(DT)
    with torch.no_grad():
        model[1].running_mean.uniform_(-0.5, 0.5)
        model[1].running_var.uniform_(0.5, 1.5)
    model.eval()
    model[1].requires_grad_(False)  # K-FAC covers Linear and Conv2d
    model[0].weight.grad = torch.ones_like(model[0].weight)
    before = ModelState(model)
    obj = Objective(model, F.cross_entropy, (x, y), weight_decay=0.1)
    v = torch.randn(obj.num_params, generator=torch.Generator().manual_seed(0), dtype=DT)
    for op in (
        KFAC(obj),
        EKFAC(obj),
        LowRank(obj, rank=4, steps=8),
        StochasticHessian(obj, 8, "fixed", 0),
        StochasticHessian(obj, 8, "per_call", 0),
        gif_lite.DenseOperator(obj.hessian(), objective=obj),
    ):
        op.hvp(v)
        op.matmat(torch.stack([v, -v]))
        if hasattr(op, "inverse_hvp"):
            op.inverse_hvp(v, 0.1)
        if getattr(op, "resample", "fixed") == "fixed":
            op.hessian()
        assert ModelState(model).same_as(before), type(op).__name__


def test_weight_norms_wrong_double_backward_is_reported_not_hidden() -> None:
    """torch's double backward through ``weight_norm`` gives an asymmetric "Hessian": the dense Hessian
    warns naming the likely cause (symmetrising it silently would hide a wrong matrix)."""
    torch.manual_seed(0)
    x, y = torch.randn(10, 3, dtype=DT), torch.arange(10) % 2
    layer = torch.nn.utils.parametrizations.weight_norm(nn.Linear(3, 2).to(DT))
    model = nn.Sequential(layer, nn.Tanh(), nn.Linear(2, 2).to(DT)).eval()
    obj = Objective(model, F.cross_entropy, (x, y))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch's vmap fallback notice for weight_norm
        warnings.simplefilter("always", gif_lite.GifLiteWarning)
        with pytest.warns(gif_lite.GifLiteWarning, match=r"not symmetric.*weight_norm"):
            obj.hessian()
    plain = Objective(_mlp(), F.cross_entropy, (torch.randn(10, 4, dtype=DT), torch.arange(10) % 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error", gif_lite.GifLiteWarning)
        plain.hessian()  # a smooth model's Hessian is symmetric to rounding: no warning
