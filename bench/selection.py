"""Selection cost relative to one forward + backward pass on the book's CNN (target: <= 1.5x).

    .venv/bin/python bench/selection.py [--ratio 0.05] [--batch 256] [--repeats 30] [--threads 2]

Model: ``gif_lite.book.models.TinyCNN`` (default size, 11,018 parameters); inputs: the first ``--batch``
training images of the embedded ``fashion-mnist-small`` set (random-normal 1x28x28 images if it cannot
be loaded), cross-entropy loss.  Times are medians of ``--repeats`` rounds after warm-up rounds; each
round runs the baseline and every method once, and a method's ratio is the median over rounds of its
time divided by that round's baseline, so a busy machine slows both sides alike.
The baseline is ``loss_fn(model(x), y).backward()``; selection never calls ``backward()``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from gif_lite.book.models import TinyCNN
from gif_lite.selection import SELECTION_METHODS, select


def _interleaved_times(
    fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 3
) -> dict[str, list[float]]:
    """Seconds per call of each function, run in interleaved rounds so load drift hits all alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def _batch(n: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    try:
        from gif_lite.book.data import load_data

        x, y = load_data("fashion-mnist-small").train
        return x[:n], y[:n], "fashion-mnist-small (first training images)"
    except Exception as e:  # the bench still runs without the embedded data
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(n, 1, 28, 28, generator=gen)
        y = torch.randint(0, 10, (n,), generator=gen)
        return x, y, f"random normal ({type(e).__name__}: {e})"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ratio", type=float, default=0.05)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = TinyCNN()
    x, y, source = _batch(args.batch)
    loss_fn = nn.CrossEntropyLoss()
    n_params = sum(p.numel() for p in model.parameters())
    print(f"TinyCNN, {n_params} parameters; batch {tuple(x.shape)} from {source}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, ratio {args.ratio}")

    def forward_backward() -> None:
        model.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()

    def selector(method: str) -> Callable[[], object]:
        return lambda: select(model, method, args.ratio, x, y, loss_fn)

    fns: dict[str, Callable[[], object]] = {"forward+backward": forward_backward}
    fns.update({m: selector(m) for m in SELECTION_METHODS})
    times = _interleaved_times(fns, args.repeats)
    base = times["forward+backward"]
    print(f"\n{'method':<26} {'median ms':>10} {'x fwd+bwd':>10} {'chosen':>7}")
    for name, ts in times.items():
        # ratio: median over rounds of (this call / the same round's forward+backward)
        ratio = statistics.median(t / b for t, b in zip(ts, base, strict=True))
        chosen = (
            "" if name not in SELECTION_METHODS else str(len(select(model, name, args.ratio, x, y, loss_fn)))
        )
        print(f"{name:<26} {statistics.median(ts) * 1e3:>10.2f} {ratio:>10.2f} {chosen:>7}")

    print(f"\nper-layer breakdown, highest_outputs at ratio {args.ratio}:")
    sel = select(model, "highest_outputs", args.ratio, x)
    print(f"{'layer':<14} {'type':<7} {'neurons':>7} {'whole':>6} {'partial':>8} {'params':>7} {'chosen':>7}")
    for r in sel.table():
        partial = "-" if r["partial_neuron"] is None else f"{r['partial_neuron']}:{r['partial_count']}"
        print(
            f"{r['layer']:<14} {r['type']:<7} {r['neurons']:>7} {r['neurons_chosen']:>6} {partial:>8} "
            f"{r['params']:>7} {r['params_chosen']:>7}"
        )
    print(f"{'total':<14} {'':<7} {'':>7} {'':>6} {'':>8} {sel.num_params:>7} {len(sel):>7}")


if __name__ == "__main__":
    main()
