"""Influence at scale: EK-FAC scores against kronfluence, GIF solvers on a large model, HVP/gradient ratios.

Three tables, each measured side by side in one run (2 CPU threads, float32 unless stated):

1. EK-FAC attribution scores for the book's CNN (TinyCNN 8-16-32, 11,018 parameters, trained 4 Adam epochs on
   2,000 embedded Fashion-MNIST images, weight decay 1e-3): all 2,000 training images x 50 test images, score
   ``grad l_test^T (G + gamma I)^-1 grad l_train``, damping ``gamma = 0.1 * mean EK-FAC eigenvalue`` (one
   absolute value for every method).  gif_lite's scores are the library's EK-FAC attribution, one call:
   ``gl.removal_effects(gl.EKFAC(obj), test, damping=gamma)`` (times ``n - 1``, the removal's scale).  Reference: the same with the exact damped Gauss-Newton matrix ``G`` of the mean
   loss (dense, from per-example Jacobians in float32 blocks summed and solved in float64; it equals
   curvlinops' ``GGNLinearOperator`` to 1.3e-7) -- the matrix that every EK-FAC here approximates, at the
   same scale (kronfluence's factors and eigenvalue corrections are means over examples too, its per-example
   gradients those of each example's own loss, no weight decay anywhere).  gif_lite's EK-FAC with sampled
   labels ("mc", kronfluence's only kind) and with the exact GGN factors ("type-2") vs kronfluence 1.0.1
   (strategy "ekfac", same absolute damping).  Spearman is the mean over test images of the rank
   correlation of a test image's 2,000 scores with the reference (and with kronfluence's).  The sampled
   methods (gif_lite "mc", kronfluence) run once per label draw (``--seeds``, default 5; kronfluence draws
   from torch's global generator, seeded before each run) and report the mean and the range: one draw
   moves the Spearman by about 0.003, as much as the difference between the methods.  Two bounds
   make the low figures readable: the exact GGN restricted to its per-layer blocks (what a perfect
   per-layer method would reach) and plain gradient dot products (no curvature).  The damping leaves only
   a few hundred of the 11,018 eigenvalues of ``G`` above it (printed), so each score is mostly the part of
   the gradients outside the top eigenspace, which the Kronecker eigenbasis inside each layer gets
   wrong: the layer-block GGN keeps a Spearman of 0.6-0.7 where both EK-FACs fall to 0.1-0.25, and the
   two EK-FACs agree with each other to 0.98-0.99 (they are one method).
2. GIF at 5% of the parameters (largest |g|), g = gradient of the mean loss of class 0 in the Hessian batch
   (the paper's class-removal target), model in eval mode: the paper's 200 Landweber steps, LSQR to a
   normal-equation residual of 1e-4 and at looser tolerances, and LSQR on the EK-FAC and low-rank operators.
   Misfit ``||H[:,P] x - g|| / ||g||`` always with the exact H.  ``--gif-model resnet18`` is the issue's
   setting (BatchNorm frozen: K-FAC covers Linear/Conv2d); by default the trained book CNN (see the note
   printed with the table).
3. HVP / gradient for each HVP method of :class:`gif_lite.Objective` on the book's CNN, a 510k-parameter
   MLP and ResNet18 (batch sizes printed): the time ratio beside the FLOP ratio counted by
   ``torch.utils.flop_counter.FlopCounterMode`` (matrix products and convolutions), so a time ratio that
   tracks its FLOP ratio marks a compute-bound HVP whose floor is that FLOP ratio.

Environment (kronfluence only here, never in gif_lite's dependencies)::

    python3 -m venv ../benchenv-scale
    ../benchenv-scale/bin/pip install torch==2.14.1 torchvision==0.29.1 kronfluence scipy scikit-learn
    ../benchenv-scale/bin/pip install -e . --no-deps

Run: ``OMP_NUM_THREADS=2 ../benchenv-scale/bin/python bench/scale.py`` (``--skip-kronfluence`` runs
without kronfluence; ``--gif-model resnet18 --hessian-batch 256`` is the issue's full-size GIF table, hours
on 2 cores: add ``--device cuda`` to run tables 2 and 3 on a GPU, e.g.
``python bench/scale.py --only 2 --gif-model resnet18 --hessian-batch 256 --device cuda``; table 1 stays
on the CPU, where kronfluence runs with ``cpu=True``).  Runtime: table 1 at its defaults (2,000 x 50,
5 draws) took about 4 minutes on 2 idle cores, 67 s of it the dense exact GGN (it grows as
n_train * k^2); table 2 on the book CNN about 35 minutes on a loaded machine (27 of them the 200
Landweber steps).
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from typing import cast

import torch
import torch.nn.functional as F
from scipy.stats import spearmanr
from torch import nn
from torch.func import functional_call, grad, jacrev, vmap
from torch.utils.flop_counter import FlopCounterMode

import gif_lite as gl
from gif_lite.book.data import load_data
from gif_lite.book.models import MLP, TinyCNN, resnet18
from gif_lite.book.runtime import set_threads
from gif_lite.train import train_minibatch


def sync() -> None:
    """Wait for queued GPU work, so wall-clock times cover it (a no-op on the CPU)."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def timed(fn: Callable[[], object]) -> tuple[object, float]:
    sync()
    start = time.perf_counter()
    out = fn()
    sync()
    return out, time.perf_counter() - start


def flops(fn: Callable[[], object]) -> int:
    """Floating-point operations of ``fn`` counted by torch's FlopCounterMode (matrix products and
    convolutions, forward and backward; element-wise work is not counted)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def table(title: str, header: list[str], rows: list[list[object]]) -> None:
    print(f"\n{title}")
    cells = [header] + [[f"{c:.4g}" if isinstance(c, float) else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for k, r in enumerate(cells):
        print("  ".join(c.rjust(w) for c, w in zip(r, widths)))
        if k == 0:
            print("  ".join("-" * w for w in widths))


# ------------------------------------------------------------------------------------------ set-up
def book_cnn(
    n_train: int = 2000,
) -> tuple[nn.Module, tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    splits = load_data("fashion-mnist-small")
    x, y = splits.train
    train = (x[:n_train], y[:n_train])
    torch.manual_seed(0)
    model = TinyCNN()
    train_minibatch(
        model, F.cross_entropy, train, epochs=4, batch_size=64, lr=3e-3, weight_decay=1e-3, progress=False
    )
    return model.eval(), train, splits.test


def per_example_grads(model: nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int = 500) -> torch.Tensor:
    """Rows: the gradient of each example's own loss (no weight decay), flat."""
    names = [n for n, p in model.named_parameters()]
    params = {n: p.detach() for n, p in model.named_parameters()}

    def loss(ps: dict[str, torch.Tensor], xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(functional_call(model, ps, (xi[None],)), yi[None])

    rows = []
    for s in range(0, len(x), chunk):
        g = vmap(grad(loss), in_dims=(None, 0, 0))(params, x[s : s + chunk], y[s : s + chunk])
        rows.append(torch.cat([g[n].reshape(g[n].shape[0], -1) for n in names], dim=1))
    return torch.cat(rows)


def dense_ggn(model: nn.Module, x: torch.Tensor, chunk: int = 100) -> torch.Tensor:
    """Exact ``G = (1/n) sum_i J_i^T (diag p_i - p_i p_i^T) J_i`` (float32 blocks summed in float64)."""
    names = [n for n, _ in model.named_parameters()]
    params = {n: p.detach() for n, p in model.named_parameters()}
    k = sum(p.numel() for p in params.values())
    g = torch.zeros(k, k, dtype=torch.float64)

    def out(ps: dict[str, torch.Tensor], xi: torch.Tensor) -> torch.Tensor:
        return functional_call(model, ps, (xi[None],))[0]

    for s in range(0, len(x), chunk):
        xb = x[s : s + chunk]
        jac = vmap(jacrev(out), in_dims=(None, 0))(params, xb)
        j = torch.cat([jac[n].reshape(len(xb), jac[n].shape[1], -1) for n in names], dim=2)  # (b, C, k)
        p = torch.softmax(model(xb), dim=1).detach()
        # Lambda = sum_c s_c s_c^T with s_c = sqrt(p_c) (p - e_c): rows (s_c^T J) stacked
        eye = torch.eye(p.shape[1], dtype=p.dtype)
        m = p.sqrt()[:, :, None] * (p[:, None, :] - eye[None])  # (b, c, C): row c is s_c
        r = (m @ j).reshape(-1, k)
        g += (r.T @ r).double()  # float32 products, float64 sum
    return g / len(x)


# ------------------------------------------------------------------------------------------ table 1
def kronfluence_scores(model: nn.Module, train: tuple, test: tuple, damping: float) -> torch.Tensor:
    from kronfluence.analyzer import Analyzer, prepare_model
    from kronfluence.arguments import FactorArguments, ScoreArguments
    from kronfluence.task import Task
    from kronfluence.utils.dataset import DataLoaderKwargs
    from torch.utils.data import TensorDataset

    class ClassificationTask(Task):
        def compute_train_loss(self, batch, model, sample=False):  # type: ignore[no-untyped-def]
            x, y = batch
            logits = model(x)
            if sample:
                with torch.no_grad():
                    y = torch.multinomial(torch.softmax(logits.detach(), -1), 1).flatten()
            return F.cross_entropy(logits, y, reduction="sum")

        def compute_measurement(self, batch, model):  # type: ignore[no-untyped-def]
            x, y = batch
            return F.cross_entropy(model(x), y, reduction="sum")

    task = ClassificationTask()
    wrapped = prepare_model(copy.deepcopy(model), task)
    with tempfile.TemporaryDirectory() as out:
        analyzer = Analyzer(
            "scale", wrapped, task, cpu=True, disable_tqdm=True, output_dir=out, disable_model_save=True
        )
        analyzer.set_dataloader_kwargs(DataLoaderKwargs(num_workers=0))
        train_set, test_set = TensorDataset(*train), TensorDataset(*test)
        analyzer.fit_all_factors(
            "f",
            train_set,
            per_device_batch_size=500,
            factor_args=FactorArguments(strategy="ekfac"),
            overwrite_output_dir=True,
        )
        analyzer.compute_pairwise_scores(
            "s",
            "f",
            test_set,
            train_set,
            per_device_query_batch_size=50,
            per_device_train_batch_size=500,
            score_args=ScoreArguments(damping_factor=damping),
            overwrite_output_dir=True,
        )
        return analyzer.load_pairwise_scores("s")["all_modules"].double()


def gif_lite_scores(
    model: nn.Module, train: tuple, test: tuple, fisher: str, damping: float | None, seed: int = 0
) -> tuple[torch.Tensor, float]:
    """gif_lite's EK-FAC attribution: ``removal_effects`` on the EK-FAC operator of the mean loss (no weight
    decay), rescaled by ``n - 1`` to ``grad l_test^T (G + gamma I)^-1 grad l_train``."""
    batches = [(train[0][s : s + 500], train[1][s : s + 500]) for s in range(0, len(train[0]), 500)]
    obj = gl.Objective(model, F.cross_entropy, batches)
    op = gl.EKFAC(obj, fisher=fisher, seed=seed)  # type: ignore[arg-type]
    if damping is None:
        damping = 0.1 * float(torch.cat([d.reshape(-1) for d in op.eigenvalues().values()]).mean())
    scores = gl.removal_effects(op, test, damping=damping, batch_size=500, progress=False)
    return (scores * (obj.num_examples - 1)).double(), damping


def mean_spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    return statistics.mean(float(spearmanr(a[j].numpy(), b[j].numpy())[0]) for j in range(a.shape[0]))


def layer_blocks(model: nn.Module) -> list[torch.Tensor]:
    """Flat indices of each module's own trainable parameters (a Linear/Conv2d layer: weight and bias)."""
    blocks, offsets = [], gl.flat_offsets(model)
    for m in model.modules():
        own = [p for p in m.parameters(recurse=False) if p.requires_grad]
        if own:
            blocks.append(torch.cat([torch.arange(offsets[id(p)], offsets[id(p)] + p.numel()) for p in own]))
    return blocks


def scores_table(skip_kronfluence: bool, n_train: int, n_test: int, seeds: int) -> tuple[nn.Module, tuple]:
    (model, train, test), t_train = timed(lambda: book_cnn(n_train))
    test = (test[0][:n_test], test[1][:n_test])
    print(f"book CNN: {sum(p.numel() for p in model.parameters()):,} parameters, trained in {t_train:.1f} s")
    (ours_t2, damping), _ = timed(lambda: gif_lite_scores(model, train, test, "type-2", None))
    (ours_t2, _), t_t2 = timed(lambda: gif_lite_scores(model, train, test, "type-2", damping))
    # sampled labels: one draw per seed (kronfluence draws from torch's global generator)
    ours_mc = [timed(lambda s=s: gif_lite_scores(model, train, test, "mc", damping, s)) for s in range(seeds)]

    m64 = copy.deepcopy(model).double()
    g_test = per_example_grads(m64, test[0].double(), test[1])
    g_train = per_example_grads(m64, train[0].double(), train[1])

    def solve_scores(ggn: torch.Tensor) -> torch.Tensor:
        ggn = ggn.clone()
        ggn.diagonal().add_(damping)
        return torch.linalg.solve(ggn, g_test.T).T @ g_train.T

    dense, t_ggn = timed(lambda: dense_ggn(model, train[0]))
    ggn = cast(torch.Tensor, dense)
    ref, t_solve = timed(lambda: solve_scores(ggn))
    above = int((torch.linalg.eigvalsh(ggn) > damping).sum())
    block_scores = torch.zeros_like(ref)  # the exact GGN with the couplings between layers dropped
    for idx in layer_blocks(model):
        gb = ggn[idx[:, None], idx]
        gb.diagonal().add_(damping)
        block_scores += torch.linalg.solve(gb, g_test[:, idx].T).T @ g_train[:, idx].T
    ggn = torch.empty(0)  # free the dense matrix
    runs: dict[str, list[tuple[float, torch.Tensor]]] = {
        "gif_lite EKFAC, fisher='mc'": [(t, sc) for (sc, _), t in ours_mc],
        "gif_lite EKFAC, fisher='type-2'": [(t_t2, ours_t2)],
        "exact GGN, layer blocks only (float64)": [(math.nan, block_scores)],
        "no curvature (gradient dot products)": [(math.nan, g_test @ g_train.T)],
    }
    kf = None
    if not skip_kronfluence:

        def kronfluence(seed: int) -> torch.Tensor:
            torch.manual_seed(seed)
            return kronfluence_scores(model, train, test, damping)

        runs["kronfluence 1.0.1 EK-FAC"] = [
            (t, sc) for sc, t in (timed(lambda s=s: kronfluence(s)) for s in range(seeds))
        ]
        kf = runs["kronfluence 1.0.1 EK-FAC"][0][1]
    rows: list[list[object]] = [["exact damped GGN (float64, dense)", t_ggn + t_solve, 1.0, "", math.nan]]
    summary = {}
    for label, rs in runs.items():
        rho = [mean_spearman(sc, ref) for _, sc in rs]
        spread = f"{min(rho):.3f}-{max(rho):.3f}" if len(rho) > 1 else ""
        summary[label] = (statistics.mean(t for t, _ in rs), statistics.mean(rho))
        rows.append([
            label + (f" ({len(rs)} seeds)" if len(rs) > 1 else ""), summary[label][0], summary[label][1],
            spread, math.nan if kf is None else mean_spearman(rs[0][1], kf),
        ])  # fmt: skip
    table(
        f"Table 1: EK-FAC scores, book CNN, {n_train:,} train x {n_test} test, damping {damping:.3g} "
        f"({above:,} of {m64_params(m64):,} GGN eigenvalues above it); sampled methods: mean over seeds",
        ["method", "time s", "Spearman vs exact", "range over seeds", "Spearman vs kronfluence (seed 0)"],
        rows,
    )
    if kf is not None:
        t_kf, rho_kf = summary["kronfluence 1.0.1 EK-FAC"]
        for label in ("gif_lite EKFAC, fisher='type-2'", "gif_lite EKFAC, fisher='mc'"):
            t, rho = summary[label]
            print(
                f"  {label}: time {t / t_kf:.2f} x kronfluence's, Spearman {rho - rho_kf:+.4f} against "
                f"kronfluence's mean (target: time <= 1, Spearman difference >= 0)"
            )
    return model, train


def m64_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# ------------------------------------------------------------------------------------------ table 2
def gif_table(
    name: str,
    hessian_batch: int,
    steps: int,
    cnn: nn.Module | None,
    train: tuple | None,
    device: torch.device,
    width: int = 64,
) -> None:
    if name == "resnet18":
        torch.manual_seed(0)
        model = resnet18(in_channels=1, width=width).eval()
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.requires_grad_(False)
        x, y = load_data("fashion-mnist-small").train
        note = "ResNet18 at initialisation (seed 0), BatchNorm frozen in eval mode"
        if width != 64:
            note += f", width {width}"
    else:
        assert cnn is not None and train is not None
        model, (x, y) = copy.deepcopy(cnn), train
        note = "the trained book CNN (table 1)"
    model = model.to(device)
    x, y = x[:hessian_batch].to(device), y[:hessian_batch].to(device)
    obj = gl.Objective(model, F.cross_entropy, (x, y))
    keep = y == 0
    g = gl.Objective(model, F.cross_entropy, (x[keep], y[keep])).gradient()
    p = g.abs().argsort(descending=True)[: max(1, int(0.05 * obj.num_params))].sort().values

    def misfit(delta: torch.Tensor) -> float:  # always with the exact H
        return gl.misfit(obj, g, delta.to(device, obj.dtype), p)

    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gl.ConvergenceWarning)
        obj.hvp(torch.zeros(obj.num_params, device=device))  # build the kept graph outside the timings
        for label, kw in [
            (f"Landweber, {steps} steps (paper)", dict(solver="landweber", max_iter=steps)),
            ("LSQR to 1e-4", dict(solver="lsqr", tol=1e-4)),
            ("LSQR to 1e-2", dict(solver="lsqr", tol=1e-2)),
            ("LSQR to 1e-1", dict(solver="lsqr", tol=1e-1)),
        ]:
            start = obj.hvp_calls
            kw.setdefault("max_iter", 1000)
            res, t = timed(lambda kw=kw: gl.generalized_influence(obj, g, p, **kw))
            rows.append([label, t, obj.hvp_calls - start, misfit(res.delta)])  # type: ignore[attr-defined]
        for label, build in [
            ("EK-FAC (type-2) + LSQR", lambda: gl.EKFAC(obj)),
            ("K-FAC (type-2) + LSQR", lambda: gl.KFAC(obj)),
            ("Arnoldi rank 20 + LSQR", lambda: gl.LowRank(obj, rank=20, steps=40)),
            ("Arnoldi rank 50 + LSQR", lambda: gl.LowRank(obj, rank=50, steps=100)),
        ]:
            start = obj.hvp_calls

            def solve(build: Callable[[], gl.HessianOperator] = build) -> object:
                op = build()
                # keep the approximate least squares well posed
                damp = 1e-3 * float(op.hvp(g).norm() / g.norm())
                return gl.generalized_influence(op, g, p, damping=damp, tol=1e-6, max_iter=500)

            res, t = timed(solve)
            rows.append([label, t, obj.hvp_calls - start, misfit(res.delta)])  # type: ignore[attr-defined]
    lsqr = rows[1]
    table(
        f"Table 2: GIF at 5% ({len(p):,} of {obj.num_params:,} parameters), {note}, {hessian_batch}-image Hessian"
        f" batch, {device.type}"
        f"\n  target: misfit <= 1.01 x LSQR's ({1.01 * lsqr[3]:.4g}) in less time than Landweber ({rows[0][1]:.3g} s)",
        ["method", "time s", "exact HVPs", "misfit"],
        rows,
    )


# ------------------------------------------------------------------------------------------ table 3
def ratio_table(repeats: int, resnet_batch: int, device: torch.device) -> None:
    """HVP / gradient: measured time beside counted FLOPs, per HVP method, side by side in one run.

    If the time ratio tracks the FLOP ratio, the HVP is compute-bound and the FLOP ratio is its floor
    for that method (the kept graph's HVP is one reverse pass through the gradient's graph: for a network
    whose every layer needs input gradients, about twice a gradient's matrix products).
    """
    x, y = load_data("fashion-mnist-small").train
    torch.manual_seed(0)
    cases = [
        ("book CNN (11k), 2000 images", TinyCNN(), 2000),
        ("MLP 784-600-64-10 (510k), 1000 images", MLP((784, 600, 64, 10), "tanh"), 1000),
        (f"ResNet18 (11.2M), {resnet_batch} images", resnet18(in_channels=1).eval(), resnet_batch),
    ]
    rows = []
    for label, model, n in cases:
        model = model.to(device)
        data = (x[:n].to(device), y[:n].to(device))
        row: list[object] = [label]
        for method in gl.HVP_METHODS:
            obj = gl.Objective(model, F.cross_entropy, data, hvp_method=method)  # type: ignore[arg-type]
            v = torch.randn(obj.num_params, device=device)
            obj.hvp(v)  # warm-up (and the kept graph for "reuse")
            t_g = min(timed(obj.gradient)[1] for _ in range(repeats))
            t_h = min(timed(lambda obj=obj, v=v: obj.hvp(v))[1] for _ in range(repeats))
            f_g, f_h = flops(obj.gradient), flops(lambda obj=obj, v=v: obj.hvp(v))
            if method == "reuse":
                row += [t_g, f_g / 1e9]
            row += [t_h / t_g, f_h / f_g]
            obj.release()
        rows.append(row)
    table(
        f"Table 3: HVP / gradient, time (min of {repeats}) and FLOPs (FlopCounterMode), float32, {device.type}",
        [
            "model",
            "gradient s",
            "gradient GFLOP",
            *[f"{m} {k}" for m in gl.HVP_METHODS for k in ("time", "FLOPs")],
        ],
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--device", default="cpu", help="device for tables 2 and 3, e.g. cuda (table 1 stays on the CPU)"
    )
    parser.add_argument(
        "--resnet-width", type=int, default=64, help="ResNet18 width in table 2 (64: the paper's)"
    )
    parser.add_argument("--skip-kronfluence", action="store_true")
    parser.add_argument("--gif-model", choices=["cnn", "resnet18"], default="cnn")
    parser.add_argument("--hessian-batch", type=int, default=256)
    parser.add_argument("--landweber-steps", type=int, default=200)
    parser.add_argument("--resnet-batch", type=int, default=16, help="images for ResNet18 in table 3")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", choices=["1", "2", "3"], default=None)
    parser.add_argument(
        "--n-train", type=int, default=2000, help="training images in table 1 (and table 2's CNN)"
    )
    parser.add_argument("--n-test", type=int, default=50, help="test images in table 1")
    parser.add_argument(
        "--seeds", type=int, default=5, help="table 1: label draws for the sampled EK-FACs (mc, kronfluence)"
    )
    args = parser.parse_args()
    os.environ.setdefault("CI", "1")  # quiet progress bars
    set_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device here")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, tables 2-3 on {device}")
    cnn, train = None, None
    if args.only in (None, "1", "2"):
        if args.only == "2" and args.gif_model == "cnn":
            cnn, train, _ = book_cnn(args.n_train)
        elif args.only != "2":
            cnn, train = scores_table(args.skip_kronfluence, args.n_train, args.n_test, args.seeds)
    if args.only in (None, "2"):
        gif_table(
            args.gif_model, args.hessian_batch, args.landweber_steps, cnn, train, device, args.resnet_width
        )
    if args.only in (None, "3"):
        ratio_table(args.repeats, args.resnet_batch, device)


if __name__ == "__main__":
    main()
