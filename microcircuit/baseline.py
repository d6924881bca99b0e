"""Backprop baseline: the circuit's equivalent feedforward network trained with plain SGD.

Along the circuit's forward chain (input -> ... -> output, the basal projections W_k, see
:attr:`Circuit.forward_chain`), with the basal attenuations c_k of :meth:`Circuit.attenuation`:

    r_0 = input rates,   r_k = phi_k(c_k W_k r_{k-1})  (hidden areas),   y_N = c_N W_N r_{N-1}

The output y_N is a potential (no phi), compared with the task's target potentials by the mean
squared error L = mean over stimuli and output neurons of (y_N - u_tgt)^2, the ``loss`` metric
of a circuit run. Training is minibatch SGD, W_k <- W_k - lr dL/dW_k (no momentum, no weight
decay, no clipping), on the same splits, from the same initial weights
(:meth:`Circuit.init_weights`) and in the same stimulus order (the circuit's ``order`` seed
stream) as the circuit, for as many epochs as the spec's training phases. Independent circuits
(seeds) train in one batched computation with weights [circuit, post, pre].

Defaults: ``epochs`` = the summed epochs of the training phases (``data: train``, teacher on,
something plastic); ``batch`` = the last training phase's ``batch``; ``lr`` =
``parameters.baseline_lr`` of the spec if it sets one, else :data:`DEFAULT_LR`.

Command line (wired as ``microcircuit baseline``)::

    python -m microcircuit.baseline circuits/yinyang_le.yaml --seeds 3 [--out baseline.csv]
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from microcircuit.circuit import Circuit
from microcircuit.datadir import data_dir_arg, use_data_dir
from microcircuit.devices import VALID, check_device
from microcircuit.experiment import DTYPES, METRIC_COLUMNS, architecture, resolve_device
from microcircuit.prospective.feedforward import ProspectiveFeedforwardNet
from microcircuit.reference.network import FeedforwardNet
from microcircuit.rundir import atomic_write_text
from microcircuit.seeds import circuit_seeds, rng
from microcircuit.shipped import DEFAULT_SPEC
from microcircuit.spec.schema import Phase, Spec
from microcircuit.tasks import Split, make_task

#: SGD learning rate (per unit of the mean squared error gradient) when neither the caller nor the spec sets one
DEFAULT_LR = 0.1


def training_phases(spec: Spec) -> list[Phase]:
    """The phases the baseline mirrors: ``data: train`` with the teacher on and something plastic."""
    return [p for p in spec.protocol if p.data == "train" and p.teacher and p.plastic != "none"]


def run_baseline(
    spec: Spec,
    seeds: Sequence[int],
    epochs: int | None = None,
    lr: float | None = None,
    batch: int | None = None,
    device: str = "cpu",
    dtype: str | None = None,
    validate_every: int | None = None,
) -> dict[str, Any]:
    """Train the equivalent feedforward network of ``spec``'s circuit with SGD, one network per seed.

    Args:
        spec: a validated spec with a task that has train/validation/test splits.
        seeds: circuit seeds (as ``microcircuit run`` uses: master seed + i); each gives the circuit's
            initial weights and stimulus order.
        epochs: passes over the training split (default: the spec's training epochs).
        lr: SGD learning rate (default: ``parameters.baseline_lr`` or :data:`DEFAULT_LR`).
        batch: stimuli per SGD step (default: the training phase's ``batch``).
        device: ``cpu``, ``cuda`` or ``auto``.
        dtype: ``float32`` or ``float64`` (default: the spec's).
        validate_every: evaluate the validation split every K epochs (default: the training phase's
            ``validate_every``; 0 = only at the end).

    Returns:
        ``{"name", "seeds", "epochs", "lr", "batch", "device", "wall_time_s",
        "train" | "validation" | "test": {"loss": [per seed], "accuracy": [per seed] or None},
        "rows": [(phase, epoch, seed, metric, value), ...]}``: final metrics after training (lists
        in the order of ``seeds``) and every logged value in the long form of ``metrics.csv``
        (phases ``baseline_validate`` per validation epoch and ``baseline_train``,
        ``baseline_validation``, ``baseline_test`` at the end).
    """
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("run_baseline needs at least one seed")
    phases = training_phases(spec)
    if epochs is None:
        if not phases:
            raise ValueError(f"spec '{spec.name}' has no training phase (data: train, teacher on, plastic); "
                             "give epochs explicitly")
        epochs = sum(p.epochs for p in phases)
    if batch is None:
        batch = phases[-1].batch if phases else 1
    if validate_every is None:
        validate_every = phases[-1].validate_every if phases else 0
    if lr is None:
        lr = float(spec.parameters.get("baseline_lr", DEFAULT_LR))
    if epochs < 0 or batch < 1 or lr < 0:
        raise ValueError(f"need epochs >= 0, batch >= 1, lr >= 0; got {epochs}, {batch}, {lr}")
    torch_device = resolve_device(device)
    torch_dtype = DTYPES[dtype or spec.dtype]

    circuit = Circuit(spec)
    task = make_task(spec.task)
    splits = task.splits(architecture(circuit))
    weights = circuit.init_weights(seeds, torch_dtype, torch_device)
    net = ProspectiveFeedforwardNet(circuit, weights) if circuit.is_prospective else FeedforwardNet(circuit, weights)
    data = {name: _tensors(split, torch_dtype, torch_device) for name, split in splits.items()}
    if not task.classification:
        data = {name: (x, t, None) for name, (x, t, _) in data.items()}
    order_rngs = [rng(s, "order") for s in seeds]
    shuffle = phases[-1].shuffle if phases else True

    start = time.perf_counter()
    rows: list[tuple] = []
    x_train, t_train, _ = data["train"]
    n = x_train.shape[0]
    for epoch in range(1, epochs + 1):
        order = (np.stack([g.permutation(n) for g in order_rngs]) if shuffle
                 else np.broadcast_to(np.arange(n), (len(seeds), n)))
        for j in range(0, n, batch):
            idx = torch.as_tensor(np.ascontiguousarray(order[:, j:j + batch]), device=torch_device)
            net.sgd_step(x_train[idx], t_train[idx], lr)
        if validate_every and epoch % validate_every == 0:
            rows += _metric_rows("baseline_validate", epoch, seeds, *net.evaluate(*data["validation"]))
        _check_finite(net, epoch)
    wall = time.perf_counter() - start

    result: dict[str, Any] = {
        "name": spec.name, "seeds": seeds, "epochs": epochs, "lr": lr, "batch": batch,
        "device": str(torch_device), "wall_time_s": wall,
    }
    for name in ("train", "validation", "test"):
        loss, acc = net.evaluate(*data[name])
        result[name] = {"loss": loss.tolist(), "accuracy": None if acc is None else acc.tolist()}
        rows += _metric_rows(f"baseline_{name}", epochs, seeds, loss, acc)
    result["rows"] = rows
    return result


def _tensors(split: Split, dtype: torch.dtype, device: torch.device):
    labels = None if split.labels is None else torch.as_tensor(split.labels, device=device)
    return (torch.as_tensor(split.inputs, dtype=dtype, device=device),
            torch.as_tensor(split.targets, dtype=dtype, device=device), labels)


def _metric_rows(phase: str, epoch: int, seeds: list[int], loss: torch.Tensor, acc: torch.Tensor | None
                 ) -> list[tuple]:
    rows = []
    for c, seed in enumerate(seeds):
        rows.append((phase, epoch, seed, "loss", float(loss[c])))
        if acc is not None:
            rows.append((phase, epoch, seed, "accuracy", float(acc[c])))
    return rows


def _check_finite(net: FeedforwardNet | ProspectiveFeedforwardNet, epoch: int) -> None:
    for name, w in zip(net.chain, net.weights, strict=True):
        if not torch.isfinite(w).all():
            raise FloatingPointError(f"baseline diverged: weights of '{name}' are NaN/Inf after epoch {epoch}; "
                                     "lower the learning rate (--lr)")


# ---------------------------------------------------------------------- command line
def format_table(result: dict[str, Any]) -> str:
    """Per-seed table of final accuracy (%) and loss on train, validation and test, plus the mean."""
    has_acc = result["test"]["accuracy"] is not None
    splits = ("train", "validation", "test")
    head = ["seed"] + [f"{s} acc %" for s in splits if has_acc] + [f"{s} loss" for s in splits]
    lines = [f"backprop baseline of {result['name']}: SGD lr {result['lr']:g}, batch {result['batch']}, "
             f"{result['epochs']} epochs, {result['device']}, {result['wall_time_s']:.1f} s", ""]
    table = [head]
    for i, seed in enumerate(result["seeds"]):
        row = [str(seed)]
        if has_acc:
            row += [f"{100 * result[s]['accuracy'][i]:.2f}" for s in splits]
        row += [f"{result[s]['loss'][i]:.5f}" for s in splits]
        table.append(row)
    if len(result["seeds"]) > 1:
        row = ["mean"]
        if has_acc:
            row += [f"{100 * np.mean(result[s]['accuracy']):.2f}" for s in splits]
        row += [f"{np.mean(result[s]['loss']):.5f}" for s in splits]
        table.append(row)
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    lines += ["  ".join(cell.rjust(w) for cell, w in zip(r, widths, strict=True)) for r in table]
    return "\n".join(lines)


def baseline_csv(rows: list[tuple]) -> str:
    """Rows (phase, epoch, seed, metric, value) as CSV text with a header, like a run's metrics.csv."""
    handle = io.StringIO()
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(METRIC_COLUMNS)
    writer.writerows(rows)
    return handle.getvalue()


def write_csv(path: str | Path, rows: list[tuple]) -> None:
    """:func:`baseline_csv` written atomically to ``path``."""
    atomic_write_text(Path(path), baseline_csv(rows))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="microcircuit baseline",
        description="Train the circuit's equivalent feedforward network with SGD (backprop baseline) "
                    "on the same data, initial weights and epochs; print a table of accuracies.")
    parser.add_argument("spec", nargs="?", default=None, type=Path,
                        help=f"circuit spec (YAML; default: the shipped {DEFAULT_SPEC.name})")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a key of the resolved spec (as for run)")
    parser.add_argument("--seeds", type=int, default=1, help="independent networks (seed = master + i)")
    parser.add_argument("--seed", type=int, default=None, help="master seed (default: the spec's)")
    parser.add_argument("--epochs", type=int, default=None, help="default: the spec's training epochs")
    parser.add_argument("--lr", type=float, default=None,
                        help=f"SGD learning rate (default: parameters.baseline_lr, else {DEFAULT_LR})")
    parser.add_argument("--batch", type=int, default=None, help="minibatch size (default: the training phase's)")
    parser.add_argument("--device", default="cpu", help=f"{VALID} (default cpu)")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default=None)
    parser.add_argument("--out", default=None, metavar="FILE.csv", help="also write every metric row as CSV")
    parser.add_argument("--threads", type=int, default=None,
                        help="intra-op threads of this process (default 1, or OMP_NUM_THREADS if set)")
    data_dir_arg(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``microcircuit baseline SPEC [options]``; returns the exit code (0 ok, 1 diverged, 2 bad spec or usage)."""
    from microcircuit.spec import SpecError, load_spec

    args = build_parser().parse_args(argv)
    from microcircuit.threads import apply_thread_policy

    try:
        apply_thread_policy(args.threads)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    use_data_dir(args.data_dir)
    if args.spec is None:
        args.spec = DEFAULT_SPEC
    try:
        check_device(args.device)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.seeds < 1:
        print(f"error: --seeds must be at least 1, got {args.seeds}", file=sys.stderr)
        return 2
    try:
        spec = load_spec(args.spec, args.overrides)[0]
    except SpecError as err:
        print(err, file=sys.stderr)
        return 2
    except OSError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    seeds = circuit_seeds(spec.seed if args.seed is None else args.seed, args.seeds)
    try:
        result = run_baseline(spec, seeds, epochs=args.epochs, lr=args.lr, batch=args.batch,
                              device=args.device, dtype=args.dtype)
    except FloatingPointError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except (RuntimeError, ValueError) as err:
        print(f"{args.spec}: error: {err}", file=sys.stderr)
        return 2
    print(format_table(result))
    if args.out:
        write_csv(args.out, result["rows"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
