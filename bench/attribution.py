"""Attribution benchmark: a 50 x n_train score matrix by gif_lite against pyDVL, Captum, torch-influence, dattri.

On scikit-learn's digits (float64, 1,295 training images) with an MLP 64-32-10 (tanh, weight decay 1e-3,
2,410 parameters) trained by L-BFGS to a stationary point, every method computes the influence of each
training image on the loss of each of 50 test images, exactly (no low-rank or Gauss-Newton shortcut).
Each is compared with the dense float64 answer of its own convention (sign, 1/n scale, with or without
the ``weight_decay * theta`` term in the training gradient: the term shifts a row by a constant, so it
does not change rankings): relative error, mean per-row Spearman, mean top-10 overlap (most helpful
images), wall time, time over the fastest peer *at equal accuracy* (relative error <= 1e-6), and the
peak extra resident memory while it ran.  Then gif_lite's self-influence of all training images, the
same table on a small CNN (two stride-2 tanh convolutions and a linear layer, 1,898 parameters), and
dattri's LDS and mislabel-AUC metrics against ours on the same numbers (an independent check of the
metric code the attribution chapter uses).

The peers live only in this benchmark's own environment (never in the project's dependencies)::

    python3 -m venv ../benchenv-attribution
    ../benchenv-attribution/bin/pip install torch==2.14.1 torchvision==0.29.1
    ../benchenv-attribution/bin/pip install pydvl==0.10.0 captum dattri==0.3.0 scipy scikit-learn tqdm
    git clone https://github.com/alstonlo/torch-influence && ../benchenv-attribution/bin/pip install ./torch-influence
    ../benchenv-attribution/bin/pip install -e . --no-deps   # gif_lite from this checkout

Run (about 10 minutes on 2 idle cores; ``--quick`` skips the CNN, ``--cg-only`` runs just the block CGs,
``--no-dattri`` skips dattri, whose attributors need 6 GiB (explicit) and 14 GiB (CG) on the MLP and run
on the MLP only: on the CNN its CG outgrew a 24 GiB machine):
``../benchenv-attribution/bin/python bench/attribution.py`` (``--threads 2`` by default, for every method).
torch-influence scores one test row per call, looping over training images one backward pass at a
time, so it runs ``--ti-rows`` rows (default 5) and its time is scaled to 50 rows (marked ``*``).
"""

from __future__ import annotations

import argparse
import copy
import functools
import os
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

import gif_lite as gl
from gif_lite.attribution import clear_cache
from gif_lite.book.data import load_data
from gif_lite.book.models import MLP
from gif_lite.train import train_lbfgs

Data = tuple[torch.Tensor, torch.Tensor]


# ------------------------------------------------------------------------------------ measuring
class PeakRSS:
    """Peak resident memory above the starting point, sampled every 5 ms in a thread (Linux)."""

    def __enter__(self) -> PeakRSS:
        self.start = self.peak = _rss()
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self) -> None:
        while self.running:
            self.peak = max(self.peak, _rss())
            time.sleep(0.005)

    def __exit__(self, *exc: object) -> None:
        self.running = False
        self.thread.join()
        self.peak = max(self.peak, _rss())

    @property
    def mib(self) -> float:
        return (self.peak - self.start) / 2**20


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@dataclass
class Row:
    name: str
    seconds: float
    scores: torch.Tensor | None
    mib: float
    note: str = ""
    is_peer: bool = False


def timed(name: str, fn: Callable[[], torch.Tensor], peer: bool = False, note: str = "") -> Row:
    with PeakRSS() as mem:
        start = time.perf_counter()
        try:
            out = fn().detach().to(torch.float64).cpu()
        except Exception as e:  # a peer that fails is reported, not fatal
            return Row(name, float("nan"), None, mem.mib, f"failed: {type(e).__name__}: {str(e)[:60]}", peer)
        seconds = time.perf_counter() - start
    return Row(name, seconds, out, mem.mib, note, peer)


# ------------------------------------------------------------------------------------ references
def references(obj: gl.Objective, test: Data) -> dict[str, torch.Tensor]:
    """Dense float64 ``T H^-1 G^T`` with G the per-example gradients with and without ``wd * theta``."""
    h = obj.hessian()
    t = torch.cat([g for _, g in gl.example_gradients(obj, test)])
    g = torch.cat([g for _, g in gl.example_gradients(obj)])
    x = torch.linalg.solve(h, t.T)  # LU, no assumption of definiteness
    plain = x.T @ g.T
    return {"grad l_i": plain, "grad l_i + wd theta": plain + obj.weight_decay * (x.T @ obj.theta())[:, None]}


def compare(scores: torch.Tensor, refs: dict[str, torch.Tensor], n: int) -> tuple[float, float, float, str]:
    """Best-matching convention (reference, sign, 1 / 1/n / 1/(n-1) scale): rel err, Spearman, top-10."""
    best: tuple[float, str, torch.Tensor] | None = None
    rows = scores.shape[0]
    for ref_name, ref in refs.items():
        ref = ref[:rows]
        for sign in (1, -1):
            for scale_name, scale in (("1", 1.0), ("1/n", 1.0 / n), ("1/(n-1)", 1.0 / (n - 1))):
                want = sign * scale * ref
                err = float((scores - want).norm() / want.norm())
                if best is None or err < best[0]:
                    best = (err, f"{'+' if sign > 0 else '-'}{scale_name} x [{ref_name}]", want)
    assert best is not None
    err, conv, want = best
    spear = sum(_spearman(scores[j], want[j]) for j in range(rows)) / rows
    top = sum(_overlap(scores[j], want[j]) for j in range(rows)) / rows
    return err, spear, top, conv


def _spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    ra, rb = a.argsort().argsort().double(), b.argsort().argsort().double()
    return float(torch.corrcoef(torch.stack([ra, rb]))[0, 1])


def _overlap(a: torch.Tensor, b: torch.Tensor, k: int = 10) -> float:
    sa = set(a.topk(k).indices.tolist())
    return len(sa & set(b.topk(k).indices.tolist())) / k


# ------------------------------------------------------------------------------------ methods
def gif_lite_rows(
    obj: gl.Objective, test: Data, tols: list[float], minres: bool, with_direct: bool = True
) -> list[Row]:
    def dense() -> torch.Tensor:
        clear_cache(obj)
        return gl.removal_effects(obj, test, solver="direct")

    rows = []
    if with_direct:
        rows.append(timed("gif_lite direct (Hessian + Cholesky)", dense))
        rows.append(
            timed(
                "gif_lite direct, factorisation cached",
                lambda: gl.removal_effects(obj, test, solver="direct"),
            )
        )
    runs = [("cg", tol) for tol in tols] + ([("minres", tols[-1])] if minres else [])
    for solver, tol in runs:
        name = {"cg": "block CG", "minres": "batched MINRES"}[solver]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", gl.ConvergenceWarning)
            rows.append(
                timed(
                    f"gif_lite {name} (tol {tol:g})",
                    lambda s=solver, t=tol: gl.removal_effects(obj, test, solver=s, tol=t),  # type: ignore[misc]
                )
            )
    return rows


def pydvl_rows(
    model: nn.Module, train: Data, test: Data, wd: float, cg_rtols: list[float], with_direct: bool = True
) -> list[Row]:
    from pydvl.influence.torch import CgInfluence, DirectInfluence
    from torch.utils.data import DataLoader, TensorDataset

    loader = DataLoader(TensorDataset(*train), batch_size=len(train[0]))

    def direct() -> torch.Tensor:
        m = DirectInfluence(copy.deepcopy(model), F.cross_entropy, regularization=wd).fit(loader)
        return m.influences(*test, *train)

    def block_cg(rtol: float) -> torch.Tensor:
        m = CgInfluence(
            copy.deepcopy(model), F.cross_entropy, regularization=wd, rtol=rtol, atol=0.0,
            solve_simultaneously=True, warn_on_max_iteration=False,
        ).fit(loader)  # fmt: skip
        return m.influences(*test, *train)

    rows = [timed("pyDVL 0.10 DirectInfluence", direct, peer=True)] if with_direct else []
    for rtol in cg_rtols:
        rows.append(
            timed(
                f"pyDVL 0.10 CgInfluence block (rtol {rtol:g})", functools.partial(block_cg, rtol), peer=True
            )
        )
    return rows


def captum_row(model: nn.Module, train: Data, test: Data, wd: float) -> Row:
    from captum.influence import NaiveInfluenceFunction
    from torch.utils.data import DataLoader, TensorDataset

    num_params = sum(p.numel() for p in model.parameters())

    def naive() -> torch.Tensor:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.pt")
            torch.save(model.state_dict(), path)
            m = copy.deepcopy(model)
            fn = NaiveInfluenceFunction(
                m, DataLoader(TensorDataset(*train), batch_size=len(train[0])), path,
                loss_fn=nn.CrossEntropyLoss(reduction="sum"), sample_wise_grads_per_batch=True,  # H of the sum: n * wd
                projection_dim=num_params, hessian_reg=wd * len(train[0]), hessian_inverse_tol=1e-14,
            )  # fmt: skip
            return fn.influence(test)

    return timed("Captum NaiveInfluenceFunction (full rank)", naive, peer=True)


def torch_influence_row(model: nn.Module, train: Data, test: Data, wd: float, rows: int) -> Row:
    from torch.utils.data import DataLoader, TensorDataset
    from torch_influence import AutogradInfluenceModule, BaseObjective

    class Objective(BaseObjective):
        def train_outputs(self, model, batch):  # type: ignore[no-untyped-def]
            return model(batch[0])

        def train_loss_on_outputs(self, outputs, batch):  # type: ignore[no-untyped-def]
            return F.cross_entropy(outputs, batch[1])

        def train_regularization(self, params):  # type: ignore[no-untyped-def]
            return 0.5 * wd * params.pow(2).sum()

        def test_loss(self, model, params, batch):  # type: ignore[no-untyped-def]
            return F.cross_entropy(model(batch[0]), batch[1])

    n = len(train[0])

    def exact() -> torch.Tensor:
        module = AutogradInfluenceModule(
            copy.deepcopy(model), Objective(), DataLoader(TensorDataset(*train), batch_size=n),
            DataLoader(TensorDataset(*test), batch_size=len(test[0])), torch.device("cpu"), damp=0.0,
        )  # fmt: skip
        return torch.stack([module.influences(list(range(n)), [j]) for j in range(rows)])

    row = timed(f"torch-influence Autograd ({rows} rows)", exact, peer=True, note="*")
    row.seconds *= len(test[0]) / rows
    return row


def dattri_rows(model: nn.Module, train: Data, test: Data, wd: float) -> list[Row]:
    """dattri 0.3's explicit-Hessian and CG influence attributors (its own convention: ``g_i^T H^-1 t_j``)."""
    from dattri.algorithm.influence_function import IFAttributorCG, IFAttributorExplicit
    from dattri.task import AttributionTask
    from torch.utils.data import DataLoader, TensorDataset

    m = copy.deepcopy(model)

    def loss(params: dict[str, torch.Tensor], batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = batch  # one example (vmapped) or the whole training set (the Hessian)
        return F.cross_entropy(torch.func.functional_call(m, params, (x,)), y)

    def run(cls: type, **kw: object) -> torch.Tensor:
        task = AttributionTask(loss_func=loss, model=m, checkpoints=m.state_dict())
        attributor = cls(task=task, device="cpu", regularization=wd, **kw)
        attributor.cache(DataLoader(TensorDataset(*train), batch_size=len(train[0])))
        loader = functools.partial(DataLoader, batch_size=len(train[0]), shuffle=False)
        return attributor.attribute(loader(TensorDataset(*train)), loader(TensorDataset(*test))).T

    return [
        timed("dattri 0.3 IFAttributorExplicit", lambda: run(IFAttributorExplicit), peer=True),
        timed(
            "dattri 0.3 IFAttributorCG (100 iterations)",
            lambda: run(IFAttributorCG, max_iter=100, tol=1e-10),
            peer=True,
        ),
    ]


def dattri_metric_checks(subsets: int) -> None:
    """Our LDS and flipped-label AUC against dattri 0.3's implementations of the same metrics, on the
    same numbers (the MLP problem): an independent check of the book's metric code.

    dattri sums the scores of the examples *kept* in a subset, ours the removal effects of those left
    out; the two sums differ by a per-test constant and a sign, so dattri is fed ``-S`` and must agree.
    """
    from dattri.metric import lds as dattri_lds
    from dattri.metric import mislabel_detection_auc
    from sklearn.metrics import roc_auc_score

    from gif_lite.book import attribution_baselines as ab

    model, train, test, wd = problem("mlp", 50)
    obj = gl.Objective(model, F.cross_entropy, train, weight_decay=wd)
    scores = gl.removal_effects(obj, test, solver="direct")
    n = len(train[0])
    gen = torch.Generator().manual_seed(0)
    masks = torch.stack([torch.randperm(n, generator=gen) < n // 2 for _ in range(subsets)])

    def fresh() -> nn.Module:
        torch.manual_seed(0)
        return MLP((64, 32, 10), activation="tanh").double()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gl.train.TrainingWarning)
        losses = ab.subset_losses(fresh, F.cross_entropy, train, test, masks, weight_decay=wd)
    ours = ab.lds(scores, masks, losses)
    indices = torch.stack([m.nonzero().squeeze(1) for m in masks])
    theirs = float(dattri_lds(-scores.T, (losses, indices))[0].mean())
    print(
        f"\nLDS of IF scores, MLP, {subsets} random halves: gif_lite {ours:.6f}, dattri {theirs:.6f}, diff {ours - theirs:.1e}"
    )
    assert abs(ours - theirs) < 1e-9

    flipped = torch.zeros(n, dtype=torch.bool)
    flipped[torch.randperm(n, generator=gen)[: n // 10]] = True
    noisy = train[1].clone()
    noisy[flipped] = (noisy[flipped] + torch.randint(1, 10, (int(flipped.sum()),), generator=gen)) % 10
    model = fresh()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gl.train.TrainingWarning)
        train_lbfgs(model, F.cross_entropy, (train[0], noisy), weight_decay=wd, tol=1e-6, max_iter=4000)
    self_inf = gl.self_influence(gl.Objective(model, F.cross_entropy, (train[0], noisy), weight_decay=wd))
    ours = float(roc_auc_score(flipped.numpy(), self_inf.numpy()))
    theirs = float(mislabel_detection_auc(self_inf, flipped)[0])
    print(
        f"flipped-label AUC of self-influence (10% flipped): sklearn {ours:.6f}, dattri {theirs:.6f}, "
        f"diff {ours - theirs:.1e} (dattri integrates in float32)"
    )
    assert abs(ours - theirs) < 1e-6


# ------------------------------------------------------------------------------------ the table
#: "Equal accuracy": the fastest peer is the fastest whose relative error is at most this.
ACCURACY = 1e-6


def table(title: str, rows: list[Row], refs: dict[str, torch.Tensor], n: int) -> None:
    accurate = [
        r.seconds
        for r in rows
        if r.is_peer and r.scores is not None and compare(r.scores, refs, n)[0] <= ACCURACY
    ]
    fastest = min(accurate) if accurate else float("nan")
    print(f"\n{title}\n(x fastest peer: time over the fastest peer with relative error <= {ACCURACY:g})")
    head = f"{'method':<46} {'seconds':>8} {'x fastest peer':>14} {'rel err':>9} {'Spearman':>8} {'top-10':>6} {'MiB':>6}"
    print(head)
    print("-" * len(head))
    conventions = set()
    for r in rows:
        if r.scores is None:
            print(f"{r.name:<46} {r.note}")
            continue
        err, spear, top, conv = compare(r.scores, refs, n)
        conventions.add(f"{r.name}: {conv}")
        print(
            f"{r.name:<46} {r.seconds:7.2f}{r.note or ' '} {r.seconds / fastest:14.2f} {err:9.1e} "
            f"{spear:8.4f} {top:6.2f} {r.mib:6.0f}"
        )
    print("conventions matched:", *sorted(conventions), sep="\n  ")


def problem(kind: str, n_test: int) -> tuple[nn.Module, Data, Data, float]:
    torch.manual_seed(0)
    if kind == "mlp":
        splits = load_data("digits", dtype=torch.float64, flatten=True)
        model: nn.Module = MLP((64, 32, 10), activation="tanh").double()
    else:
        splits = load_data("digits", dtype=torch.float64)
        model = nn.Sequential(  # tanh, not ReLU: a smooth loss, so L-BFGS reaches a stationary point
            nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.Tanh(),  # 8 x 8 -> 4 x 4
            nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.Tanh(),  # -> 2 x 2
            nn.Flatten(), nn.Linear(64, 10),
        ).double()  # fmt: skip
    wd = 1e-3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gl.train.TrainingWarning)
        res = train_lbfgs(
            model, F.cross_entropy, splits.train, weight_decay=wd, tol=1e-6, max_iter=4000, progress=False
        )
    print(
        f"{kind}: {gl.params.count_parameters(model):,} parameters, trained to ||grad|| = {res.grad_norm:.1e}"
    )
    test = (splits.test[0][:n_test], splits.test[1][:n_test])
    return model, splits.train, test, wd


def run(kind: str, args: argparse.Namespace) -> None:
    model, train, test, wd = problem(kind, args.n_test)
    obj = gl.Objective(model, F.cross_entropy, train, weight_decay=wd)
    refs = references(obj, test)
    n = len(train[0])
    if args.cg_only:  # the two block CGs side by side, nothing else
        rows = gif_lite_rows(obj, test, args.tol, False, with_direct=False)
        rows += pydvl_rows(model, train, test, wd, args.cg_rtol, with_direct=False)
        table(f"{kind}: {args.n_test} x {n} influence scores, block CG only", rows, refs, n)
        return
    rows = gif_lite_rows(obj, test, args.tol, args.minres)
    rows += pydvl_rows(model, train, test, wd, args.cg_rtol)
    rows.append(captum_row(model, train, test, wd))
    if kind == "mlp":
        rows.append(torch_influence_row(model, train, test, wd, args.ti_rows))
    if kind == "mlp" and not args.no_dattri:  # on the CNN dattri's CG outgrew 23 GiB and was killed
        rows += dattri_rows(model, train, test, wd)
    table(f"{kind}: {args.n_test} x {n} influence scores (float64, exact Hessian)", rows, refs, n)

    chunks = (8, 16, 32, 64, 128)
    seconds = []
    for c in chunks:  # justify gl.HESSIAN_CHUNK: larger blocks fall out of the caches
        obj.release()
        start = time.perf_counter()
        obj.hessian(chunk=c)
        seconds.append(time.perf_counter() - start)
    print(f"{kind}: dense Hessian build, seconds by columns per pass (default {gl.HESSIAN_CHUNK}):")
    print("  " + "  ".join(f"{c}: {t:.2f}" for c, t in zip(chunks, seconds, strict=True)))

    clear_cache(obj)
    cold = timed("self-influence, cold", lambda: gl.self_influence(obj, solver="direct"))
    warm = timed("self-influence, factorisation cached", lambda: gl.self_influence(obj, solver="direct"))
    h = obj.hessian()
    g = torch.cat([g for _, g in gl.example_gradients(obj)])
    want = ((g + wd * obj.theta()) / (n - 1) * torch.linalg.solve(h, g.T).T).sum(1)
    for r in (cold, warm):
        assert r.scores is not None
        err = float((r.scores - want).norm() / want.norm())
        print(
            f"{kind}: gif_lite {r.name} of all {n:,} training images: {r.seconds:.2f} s, rel err {err:.1e}, {r.mib:.0f} MiB"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-test", type=int, default=50)
    parser.add_argument(
        "--tol", type=float, nargs="+", default=[3e-6, 1e-6, 1e-8], help="gif_lite's block CG"
    )
    parser.add_argument(
        "--cg-rtol", type=float, nargs="+", default=[1e-3, 1e-4, 1e-6], help="pyDVL's block CG"
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads for every method")
    parser.add_argument("--no-dattri", action="store_true", help="skip dattri's attributors and metrics")
    parser.add_argument("--lds-subsets", type=int, default=40, help="random halves for the LDS check")
    parser.add_argument("--minres", action="store_true", help="also gif_lite's batched MINRES (slow here)")
    parser.add_argument("--ti-rows", type=int, default=5, help="test rows torch-influence runs")
    parser.add_argument("--quick", action="store_true", help="the MLP only")
    parser.add_argument("--cnn-only", action="store_true", help="the CNN table only")
    parser.add_argument("--cg-only", action="store_true", help="only the block-CG rows, MLP only")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{args.threads} torch threads; load average at start {os.getloadavg()[0]:.2f}")
    if not args.cnn_only:
        run("mlp", args)
    if not (args.quick or args.cg_only):
        run("cnn", args)
    if not (args.cg_only or args.no_dattri or args.cnn_only):
        dattri_metric_checks(args.lds_subsets)


if __name__ == "__main__":
    main()
