"""Property tests (hypothesis) of the main public functions over shapes, dtypes and input forms.

Every drawn call holds one property: it raises the library's error (:class:`gl.GifLiteError`), or it gives
the canonical answer (dense float64 algebra, or the canonical input form's result), and in both cases
the model is left exactly as it was (parameters, buffers, modes, ``requires_grad``, ``.grad``).  In
float16 and bfloat16, where no solve reaches the default tolerance, the answer must be finite, of the
right shape and dtype, and report ``converged`` honestly (with a warning when it did not).

Derandomised with few examples each, so the suite stays fast and deterministic.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from typing import Any

import torch
from hypothesis import event, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn import functional as F

import gif_lite as gl
from gif_lite import solvers as S
from gif_lite.checks import GifLiteError, ModelState

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True)
DTYPES = (torch.float64, torch.float32, torch.float16, torch.bfloat16)
HALF = (torch.float16, torch.bfloat16)
CE = F.cross_entropy
N, D, K = 10, 3, 2


def _model(dtype: torch.dtype, hidden: int) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(D, hidden), nn.Tanh(), nn.Linear(hidden, K)).to(dtype).eval()


def _data(dtype: torch.dtype, n: int = N) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return torch.randn(n, D, generator=gen).to(dtype), torch.arange(n) % K


def _dense(model: nn.Module, wd: float) -> torch.Tensor:
    """The float64 Hessian of the same model and data: the reference every answer is compared with."""
    twin = copy.deepcopy(model).double()
    return gl.Objective(twin, CE, _data(torch.float64), weight_decay=wd).hessian()


def _outcome(call: Callable[[], Any], model: nn.Module) -> tuple[Any, list[warnings.WarningMessage]]:
    """``(result or the GifLiteError, warnings)``; any other exception fails, and so does a changed model."""
    before = ModelState(model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            out: Any = call()
        except GifLiteError as e:
            out = e
    assert ModelState(model).same_as(before), "the call changed the model"
    return out, caught


def _honest(res: Any, caught: list[warnings.WarningMessage], tol: float) -> None:
    """``converged`` agrees with the residual, and an unconverged solve warned."""
    assert res.converged == (res.residual <= tol)
    if not res.converged:
        assert any(issubclass(w.category, S.ConvergenceWarning) for w in caught)


# ------------------------------------------------------------------------------------ the four estimators
SOLVERS = {
    "IF": ("minres", "direct", "cg", "lsqr", "lissa"),
    "FIF": ("minres", "direct", "cg"),
    "PIF": ("minres", "direct"),
    "GIF": ("lsqr", "direct", "landweber"),
}
ESTIMATORS = {
    "IF": lambda o, g, p, **kw: gl.influence(o, g, **kw),
    "FIF": gl.frozen_influence,
    "PIF": gl.projected_influence,
    "GIF": gl.generalized_influence,
}
# valid forms drawn more often than each way of going wrong
G_FORMS = ("tensor",) * 5 + ("list", "numpy", "column", "short", "nan")
P_FORMS = ("tensor", "tensor", "list", "mask", "unsorted", "out-of-range")


def _reference(name: str, h: torch.Tensor, g: torch.Tensor, p: torch.Tensor, damping: float) -> torch.Tensor:
    a = h + damping * torch.eye(h.shape[0], dtype=h.dtype)
    if name == "IF":
        return torch.linalg.solve(a, g)
    if name == "FIF":
        return torch.linalg.solve(a[p][:, p], g[p])
    if name == "PIF":
        return torch.linalg.solve(a, g)[p]
    return torch.linalg.pinv(a[:, p]) @ g


def _g_form(form: str, g: torch.Tensor) -> object:
    return {
        "tensor": g,
        "list": g.tolist(),
        "numpy": g.numpy() if g.dtype not in HALF else g.float().numpy(),
        "column": g[:, None],
        "short": g[:-1],
        "nan": g * float("nan"),
    }[form]


def _p_form(form: str, p: list[int], n: int) -> object:
    mask = torch.zeros(n, dtype=torch.bool)
    mask[p] = True
    return {
        "tensor": torch.tensor(p),
        "list": p,
        "mask": mask,
        "unsorted": list(reversed(p)) if len(p) > 1 else [n],
        "out-of-range": [*p[:-1], n + 3],
    }[form]


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    dtype=st.sampled_from(DTYPES),
    hidden=st.integers(2, 4),
    case=st.sampled_from(list(ESTIMATORS)).flatmap(
        lambda e: st.tuples(st.just(e), st.sampled_from(SOLVERS[e]))
    ),
    g_form=st.sampled_from(G_FORMS),
    p_form=st.sampled_from(P_FORMS),
    p_seed=st.integers(0, 1000),
    damping=st.sampled_from([0.5, 1.0]),
)
def test_estimators_give_the_dense_answer_or_a_clear_error(
    dtype: torch.dtype,
    hidden: int,
    case: tuple[str, str],
    g_form: str,
    p_form: str,
    p_seed: int,
    damping: float,
) -> None:
    name, solver = case
    model = _model(dtype, hidden)
    obj = gl.Objective(model, CE, _data(dtype), weight_decay=0.1)
    n = obj.num_params
    gen = torch.Generator().manual_seed(p_seed)
    p = sorted(torch.randperm(n, generator=gen)[: max(2, n // 3)].tolist())
    g64 = torch.randn(n, generator=gen, dtype=torch.float64)
    g_in, p_in = _g_form(g_form, g64.to(dtype)), _p_form(p_form, p, n)
    out, caught = _outcome(lambda: ESTIMATORS[name](obj, g_in, p_in, solver=solver, damping=damping), model)
    valid = g_form == "tensor" and (name == "IF" or p_form in ("tensor", "list", "mask"))
    half_direct = dtype in HALF and solver == "direct"
    if not valid or half_direct:
        assert isinstance(out, GifLiteError), f"{name}/{solver} accepted g={g_form}, P={p_form} in {dtype}"
        event("refused")
        return
    assert not isinstance(out, Exception), f"{name}/{solver} refused a valid input: {out}"
    size = n if name == "IF" else len(p)
    assert out.delta.shape == (size,) and out.delta.dtype == dtype and bool(torch.isfinite(out.delta).all())
    tol = 1e-10 if dtype == torch.float64 else 1e-5  # influence.default_tol
    _honest(out, caught, tol)
    if dtype in HALF or not out.converged:
        event("half or unconverged: honest")
        return
    event("compared with dense float64")
    want = _reference(name, _dense(model, 0.1), g64.to(dtype).double(), torch.tensor(p), damping)
    err = float((out.delta.double() - want).norm() / want.norm())
    assert err < (1e-6 if dtype == torch.float64 else 5e-2), (
        f"{name}/{solver} in {dtype}: rel. error {err:.1e}"
    )


# ------------------------------------------------------------------------------------ select
METHODS = ("random", "highest_outputs", "highest_gradients", "largest_gradient_entries", "exclusive_outputs")


@SETTINGS
@given(
    dtype=st.sampled_from(DTYPES),
    hidden=st.integers(2, 5),
    method=st.sampled_from(METHODS),
    ratio=st.sampled_from([0.1, 0.3, 0.5, 1.0, 0.2, 0.0, 1.5, float("nan")]),
    form=st.sampled_from(("tensor", "numpy", "empty")),
    m=st.integers(1, 6),
)
def test_select_gives_a_valid_subset_the_tensor_answer_or_a_clear_error(
    dtype: torch.dtype, hidden: int, method: str, ratio: float, form: str, m: int
) -> None:
    model = _model(dtype, hidden)
    x, y = _data(dtype, m)
    n = gl.count_parameters(model)

    def call(xs: object, ys: object) -> gl.Selection:
        return gl.select(model, method, ratio, xs, ys, CE, generator=3)

    if form == "numpy":
        xs: object = x.numpy() if dtype not in HALF else x  # numpy has no bfloat16; float16 casts back
        ys: object = y.numpy()
    elif form == "empty":
        xs, ys = x[:0], y[:0]
    else:
        xs, ys = x, y
    out, _ = _outcome(lambda: call(xs, ys), model)
    valid = 0 < ratio <= 1 and (form != "empty" or method == "random")
    if not valid:
        assert isinstance(out, GifLiteError)
        event("refused")
        return
    event("selected")
    if isinstance(out, GifLiteError):  # a legitimate refusal must name something the caller can change
        assert "exclusive" in str(out) or "ratio" in str(out), out
        return
    sub = out.subset
    assert sub.dtype == torch.int64 and sub.dim() == 1 and sub.numel() >= 1
    assert bool((sub[1:] > sub[:-1]).all()) and int(sub.min()) >= 0 and int(sub.max()) < n
    if form == "numpy":
        assert torch.equal(sub, call(x, y).subset)  # numpy gives the tensor form's subset


# ------------------------------------------------------------------------------------ removal_effects
@SETTINGS
@given(
    dtype=st.sampled_from(DTYPES),
    estimator=st.sampled_from(("IF", "FIF", "PIF", "GIF")),
    solver=st.sampled_from(("auto", "auto", "direct", "minres", "minres", "cg", "lsqr")),
    n_test=st.sampled_from((1, 2, 3, 4, 0)),
    form=st.sampled_from(("pair", "numpy", "tensordataset", "list")),
)
def test_removal_effects_give_the_dense_answer_or_a_clear_error(
    dtype: torch.dtype, estimator: str, solver: str, n_test: int, form: str
) -> None:
    model = _model(dtype, 3)
    obj = gl.Objective(model, CE, _data(dtype), weight_decay=0.1)
    n = obj.num_params
    p = list(range(0, n, 3)) if estimator != "IF" else None
    tx, ty = _data(dtype, 6)
    tx, ty = tx[:n_test], ty[:n_test]
    test: object = {
        "pair": (tx, ty),
        "numpy": (tx.float().numpy(), ty.numpy()),
        "tensordataset": torch.utils.data.TensorDataset(tx, ty),
        "list": [(tx, ty)],
    }[form]
    kw = {"damping": 1.0, "progress": False}
    out, _ = _outcome(lambda: gl.removal_effects(obj, test, p, estimator, solver, **kw), model)
    batched = {"IF": ("auto", "direct", "cg", "minres"), "FIF": ("auto", "direct", "cg", "minres")}
    batched |= {"PIF": ("auto", "direct", "cg", "minres"), "GIF": ("auto", "direct", "lsqr")}
    valid = n_test > 0 and solver in batched[estimator]
    if not valid:
        assert isinstance(out, GifLiteError)
        return
    if dtype in HALF and solver in ("auto", "direct", "cg"):  # torch factorises in float32/64 only
        assert isinstance(out, GifLiteError) and "float32" in str(out)
        return
    assert not isinstance(out, Exception), out
    assert out.shape == (n_test, N) and bool(torch.isfinite(out).all())
    if dtype != torch.float64:
        event("answered")
        return
    event("compared with dense float64")
    # dense float64 reference: S[j, i] = t_j[P] . (A^-1 or pinv) g_i, g_i = (grad l_i + wd theta) / (n - 1)
    h = _dense(model, 0.1) + torch.eye(n, dtype=torch.float64)
    per = torch.cat([g for _, g in gl.example_gradients(obj, progress=False)])
    gi = (per + 0.1 * gl.flat_params(model)) / (N - 1)
    t = torch.cat([g for _, g in gl.example_gradients(obj, (tx, ty), progress=False)])
    pt = torch.tensor(p) if p is not None else None
    if estimator == "IF":
        want = t @ torch.linalg.solve(h, gi.T)
    elif estimator == "FIF":
        want = t[:, pt] @ torch.linalg.solve(h[pt][:, pt], gi[:, pt].T)
    elif estimator == "PIF":
        want = t[:, pt] @ torch.linalg.solve(h, gi.T)[pt]
    else:
        want = t[:, pt] @ torch.linalg.pinv(h[:, pt]) @ gi.T
    assert float((out - want).norm() / want.norm()) < 1e-6


# ------------------------------------------------------------------------------------ solvers
@SETTINGS
@given(
    dtype=st.sampled_from(DTYPES),
    n=st.integers(1, 30),
    solver=st.sampled_from(("cg", "minres", "lissa", "lsqr", "landweber", "direct")),
    tol=st.sampled_from([1e-12, 1e-6, 1e-3]),
    seed=st.integers(0, 100),
    b_form=st.sampled_from(("vector", "column", "nan", "list")),
)
def test_solvers_give_the_dense_answer_or_report_what_stopped_them(
    dtype: torch.dtype, n: int, solver: str, tol: float, seed: int, b_form: str
) -> None:
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
    a64 = (q * torch.linspace(1.0, 4.0, n, dtype=torch.float64)) @ q.T
    b64 = torch.randn(n, generator=gen, dtype=torch.float64)
    a, b = a64.to(dtype), b64.to(dtype)
    b_in: object = {"vector": b, "column": b[:, None], "nan": b * float("nan"), "list": b.tolist()}[b_form]

    def matvec(v: torch.Tensor) -> torch.Tensor:
        return (a.float() @ v.float()).to(v.dtype) if dtype in HALF else a @ v

    calls = {
        "cg": lambda: S.cg(matvec, b_in, tol=tol, max_iter=10**6),
        "minres": lambda: S.minres(matvec, b_in, tol=tol, max_iter=10**6),
        "lissa": lambda: S.lissa(matvec, b_in, scale=4.4, tol=tol, max_iter=10**6),
        "lsqr": lambda: S.lsqr(matvec, matvec, b_in, tol=tol, max_iter=10**6),
        "landweber": lambda: S.landweber(matvec, matvec, b_in, tol=tol, normalizer=4.0, max_iter=2000),
        "direct": lambda: S.direct(a, b_in, tol=tol),
    }
    out, caught = _outcome(calls[solver], nn.Linear(1, 1))
    if b_form != "vector" or (solver == "direct" and dtype in HALF):
        assert isinstance(out, GifLiteError)
        return
    assert not isinstance(out, Exception), out
    assert out.iterations <= (2000 if solver == "landweber" else 10_000)  # stagnation bounds every run
    assert out.x.shape == (n,) and out.x.dtype == dtype
    _honest(out, caught, tol)
    event("converged" if out.converged else "stopped, honestly")
    floor = 1e3 * torch.finfo(dtype).eps
    if tol >= floor and solver != "landweber":  # reachable: it must get there
        assert out.converged, (solver, dtype, out.residual)
    if out.converged and dtype == torch.float64:
        want = torch.linalg.solve(a64, b64)
        assert float((out.x - want).norm() / want.norm()) <= 10 * tol * 4.0  # kappa <= 4
