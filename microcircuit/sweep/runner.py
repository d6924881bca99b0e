"""Running a sweep: executors on Dask, progress, restart, and the results table.

Executors (all run :func:`microcircuit.sweep.worker.run_task` on each simulation):

- in this process (default; nothing to start);
- ``workers=N``: a Dask ``LocalCluster`` of N worker processes with one thread each, on loopback;
- ``scheduler="tcp://host:port"``: a running Dask cluster (e.g. started by dask-jobqueue on SLURM or PBS);
  its workers need this package and the sweep directory on a shared file system.

The sweep directory (``OUT/NAME``) holds ``sweep.yaml`` (the file as given), ``sweep.json`` (runs,
simulations, command), ``runs/<id>/`` per run (``done.json`` marks it finished), and at the end
``results.csv`` (long form: run, the axis columns, seed, metric, value), ``curves.csv`` (with ``epoch``)
when the sweep asks for curves, and ``runs.csv`` (one row per run: status, error, engine, times).
"""

from __future__ import annotations

import heapq
import json
import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from microcircuit.rundir import atomic_write_text
from microcircuit.sweep.grouping import Task, group, run_id, separating_keys, structure_key
from microcircuit.sweep.spec import DEFAULT_MAX_CIRCUITS, DEFAULT_MEMORY_MB, Run, SweepFile, expand
from microcircuit.sweep.worker import FINAL, read_completion, run_task


@dataclass
class SweepPlan:
    """An expanded sweep: its validated runs, their ids and the simulations they are grouped into."""

    sweep: SweepFile
    runs: list[Run]
    ids: list[str]
    tasks: list[Task]

    @property
    def columns(self) -> list[str]:
        return self.sweep.columns


def plan(sweep: SweepFile, device: str | None = None) -> SweepPlan:
    """Expand and validate every run (raises SpecError), name them and group them into simulations."""
    runs = expand(sweep)
    device = device or sweep.device
    ids = [run_id(r, device) for r in runs]
    tasks = group(runs, ids, device, sweep.max_circuits, sweep.memory_mb, sweep.save_weights, sweep.divergence)
    return SweepPlan(sweep, runs, ids, tasks)


def plan_runs(name: str, runs: list[Run], columns: list[str], metrics: list[str], curves: list[str] = (),
              device: str = "cpu", divergence: str = "run", max_circuits: int = DEFAULT_MAX_CIRCUITS,
              memory_mb: float = DEFAULT_MEMORY_MB, save_weights: bool = False) -> SweepPlan:
    """A plan of runs built in code (validated specs with their seeds and axis values) rather than read from
    a sweep file: for programs whose runs are no product of axes (e.g. a union of one-knob sweeps)."""
    base = Path(runs[0].spec.name) if runs else Path("")
    sweep = SweepFile(f"<{name}>", None, name, "", base, [], [], len(runs[0].seeds) if runs else 0, None,
                      list(metrics), list(curves), device, max_circuits, memory_mb, save_weights,
                      divergence=divergence, column_names=list(columns))
    ids = [run_id(r, device) for r in runs]
    return SweepPlan(sweep, runs, ids, group(runs, ids, device, max_circuits, memory_mb, save_weights, divergence))


#: at most this many of the keys that separate simulations are named in :func:`describe`
MAX_KEYS_SHOWN = 8


def describe(p: SweepPlan) -> str:
    """The expanded runs and their grouping into simulations (``--dry-run``)."""
    lines = [f"sweep {p.sweep.name}: {len(p.runs)} run(s) of {p.sweep.seed_count} seed(s) over "
             f"{p.sweep.base}, {len(p.tasks)} simulation(s)"]
    lines.append("runs:")
    for r, rid in zip(p.runs, p.ids, strict=True):
        lines.append(f"  {r.index:4d} {rid}  {r.label()}  seeds {r.seeds[0]}..{r.seeds[-1]}")
    lines.append("simulations (runs batched into one; batched over the columns shown):")
    for t in p.tasks:
        lines.append(f"  {t.number:4d}: runs {', '.join(str(r.index) for r in t.runs)} "
                     f"({t.n_circuits} circuits; batched over {', '.join(t.batched_over)})")
    structures = {structure_key(t.runs[0].spec): t.runs[0].spec for t in p.tasks}
    if len(structures) > 1:
        keys = separating_keys(list(structures.values()))
        shown = ", ".join(keys[:MAX_KEYS_SHOWN]) + (f" and {len(keys) - MAX_KEYS_SHOWN} more"
                                                    if len(keys) > MAX_KEYS_SHOWN else "")
        why = "held once for all circuits of a simulation"
        if any(".conductances." in k for k in keys) and any(s.task.teacher is not None for s in structures.values()):
            why += "; the teacher task's targets follow the conductances, one data set for all circuits"
        lines.append(f"separate simulations: the runs differ in {shown} ({why})")
    if len(structures) < len(p.tasks):
        lines.append(f"runs of one structure split at batch.max_circuits = {p.sweep.max_circuits} or "
                     f"batch.memory_mb = {p.sweep.memory_mb:g}")
    return "\n".join(lines)


def _format_seconds(s: float) -> str:
    s = max(0.0, s)
    return f"{s / 3600:.1f} h" if s >= 5400 else f"{s / 60:.1f} min" if s >= 90 else f"{s:.0f} s"


class Progress:
    """Runs done, running and failed, and the estimated time left, on stderr.

    The estimate schedules what is left on the workers: a unit of cost takes the seconds that the
    finished simulations took per unit (their own wall time, not the sweep's, so that a long
    simulation still running on one worker does not slow the estimate of the others); a running
    simulation is counted from when it started (when its worker finished the one before), and the
    queued ones go, longest first, to whichever worker is free first.
    """

    def __init__(self, total: int, skipped: int, quiet: bool):
        self.total, self.done, self.failed, self.quiet = total, skipped, 0, quiet
        self.started = time.perf_counter()
        self.cost_done = 0.0  # cost of the finished simulations
        self.busy_s = 0.0  # their wall seconds, summed
        self.workers = 1
        self.costs: dict[int, float] = {}  # task number -> cost, of every unfinished simulation
        self.runs: dict[int, int] = {}  # task number -> runs it holds
        self.queued: list[int] = []  # task numbers not started, in the order they will start
        self.running: dict[int, float] = {}  # task number -> start (perf_counter seconds)

    def begin(self, tasks: list[Task], workers: int) -> None:
        """``tasks`` in the order they will start; ``workers`` simulations run at once."""
        self.workers = max(1, workers)
        self.costs = {t.number: t.cost for t in tasks}
        self.runs = {t.number: len(t.runs) for t in tasks}
        self.queued = [t.number for t in tasks]
        self._start_queued()

    def _start_queued(self) -> None:
        now = time.perf_counter()
        while self.queued and len(self.running) < self.workers:
            self.running[self.queued.pop(0)] = now

    def finish(self, task: Task, seconds: float | None) -> None:
        """``task`` left the workers; it ran ``seconds`` of wall time, or None where it did not run to its
        end (an error, a lost worker), which then teaches the estimate nothing."""
        self.running.pop(task.number, None)
        if task.number in self.queued:
            self.queued.remove(task.number)
        self.costs.pop(task.number, None)
        if seconds is not None and seconds > 0.0:
            self.busy_s += seconds
            self.cost_done += task.cost
        self._start_queued()

    def eta_seconds(self) -> float | None:
        """Estimated wall seconds until every simulation has finished; None before one has."""
        if self.cost_done <= 0.0 or self.busy_s <= 0.0:
            return None
        per_cost, now = self.busy_s / self.cost_done, time.perf_counter()
        free = [max(now, start + per_cost * self.costs[n]) for n, start in self.running.items()]
        free += [now] * (self.workers - len(free))
        heapq.heapify(free)
        for number in self.queued:
            heapq.heappush(free, heapq.heappop(free) + per_cost * self.costs[number])
        return max(free) - now

    def report(self, message: str = "") -> None:
        if self.quiet:
            return
        running = sum(self.runs[n] for n in self.running)
        elapsed = time.perf_counter() - self.started
        left = self.eta_seconds()
        eta = f"ETA {_format_seconds(left)}" if left is not None else "ETA unknown"
        print(f"sweep: {self.done}/{self.total} runs done, {running} running, {self.failed} failed, {eta}"
              f" ({_format_seconds(elapsed)} elapsed){'; ' + message if message else ''}", file=sys.stderr, flush=True)


def _wall_seconds(records: list[dict]) -> float | None:
    """A simulation's wall time from its runs' records (started/finished where it ran); None where none
    of its runs ran to its end (done)."""
    records = [r for r in records if r.get("status") == "done"]  # a diverged run may stop early
    starts = [r["started"] for r in records if isinstance(r.get("started"), (int, float))]
    ends = [r["finished"] for r in records if isinstance(r.get("finished"), (int, float))]
    return max(ends) - min(starts) if starts and ends else None


def execute(p: SweepPlan, sweep_dir: Path, workers: int = 0, scheduler: str | None = None, quiet: bool = False,
            argv: list[str] | None = None) -> pd.DataFrame:
    """Run every unfinished run of ``p`` into ``sweep_dir`` and write the tables; returns ``results.csv``.

    Runs with a completion file of status done or diverged are skipped (a restart continues);
    simulations are regrouped from the unfinished runs only.
    """
    sweep_dir = Path(sweep_dir).resolve()
    sweep_dir.mkdir(parents=True, exist_ok=True)
    if p.sweep.path is not None and p.sweep.path.resolve() != (sweep_dir / "sweep.yaml").resolve():
        shutil.copyfile(p.sweep.path, sweep_dir / "sweep.yaml.tmp")
        (sweep_dir / "sweep.yaml.tmp").replace(sweep_dir / "sweep.yaml")
    finished = {rid for rid in p.ids if (read_completion(sweep_dir, rid) or {}).get("status") in FINAL}
    # runs with the same id (the same circuit, seeds and device, e.g. level 0 of several axes) run once
    todo, seen = [], set(finished)
    for k, rid in enumerate(p.ids):
        if rid not in seen:
            todo.append(k)
            seen.add(rid)
    tasks = group([p.runs[k] for k in todo], [p.ids[k] for k in todo], p.tasks[0].device if p.tasks else "cpu",
                  p.sweep.max_circuits, p.sweep.memory_mb, p.sweep.save_weights, p.sweep.divergence)
    for t in tasks:
        t.sweep_dir = str(sweep_dir)
    atomic_write_text(sweep_dir / "sweep.json", json.dumps({
        "name": p.sweep.name, "base": str(p.sweep.base), "columns": p.columns, "seeds": p.sweep.seed_count,
        "metrics": p.sweep.metrics, "curves": p.sweep.curves, "argv": argv if argv is not None else sys.argv,
        "runs": [{"id": rid, "index": r.index, "axes": r.axes, "seeds": r.seeds, "overrides": r.overrides}
                 for r, rid in zip(p.runs, p.ids, strict=True)],
        "simulations": [{"runs": t.ids, "circuits": t.n_circuits, "batched_over": t.batched_over} for t in tasks],
    }, indent=2, default=str) + "\n")
    progress = Progress(len(set(p.ids)), len(finished), quiet)
    if not quiet:
        where = (f"the Dask cluster at {scheduler}" if scheduler else
                 f"a local Dask cluster of {workers} worker process(es)" if workers > 0 else "this process")
        print(f"sweep {p.sweep.name}: {len(set(p.ids))} runs ({len(finished)} finished before), {len(tasks)} "
              f"simulation(s) to run in {where}; writing {sweep_dir}", file=sys.stderr, flush=True)
    order = sorted(tasks, key=lambda t: -t.cost)  # longest first, so that the workers finish together

    def finished_task(task: Task, records: list[dict]) -> None:
        progress.done += sum(r["status"] in FINAL for r in records)
        bad = [r for r in records if r["status"] != "done"]
        progress.failed += len(bad)
        progress.finish(task, _wall_seconds(records))
        note = "; ".join(f"run {r['index']} {r['status']}: {_last_line(r['error'])[:200]}" for r in bad)
        progress.report(note)

    if scheduler is None and workers <= 0:
        progress.begin(order, 1)
        progress.report()
        for task in order:
            finished_task(task, run_task(task))
    else:
        _execute_dask(order, workers, scheduler, progress, finished_task)
    return collect(p, sweep_dir)


def _execute_dask(tasks: list[Task], workers: int, scheduler: str | None, progress: Progress,
                  finished_task) -> None:
    from distributed import Client, LocalCluster, as_completed

    quiet = logging.getLogger("distributed")  # Dask's info lines (scheduler, nannies, workers) are not ours
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # (and its warning that it killed a worker process at shutdown)
    cluster = None
    if scheduler is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        if workers > cores:
            print(f"sweep: note: {workers} workers of one thread each on {cores} core(s) share the cores",
                  file=sys.stderr, flush=True)
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None, silence_logs=logging.ERROR,
                               env={"OMP_NUM_THREADS": "1"})
        client = Client(cluster)
    else:
        client = Client(scheduler)
    try:
        progress.begin(tasks, len(client.scheduler_info().get("workers", {})) or workers or 1)
        futures = {client.submit(run_task, t, key=f"microcircuit-sweep-{t.number}-{t.ids[0]}", pure=False,
                                 priority=len(tasks) - k): t for k, t in enumerate(tasks)}
        for future in as_completed(list(futures)):
            task = futures[future]
            try:
                records = future.result()
            except Exception as err:  # noqa: BLE001 - a lost worker: record the task's runs as errors
                records = [_lost(task, run, rid, err) for run, rid in zip(task.runs, task.ids, strict=True)]
            progress.workers = max(1, len(client.scheduler_info().get("workers", {})))  # a cluster may scale
            finished_task(task, records)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
        quiet.setLevel(level)


def _lost(task: Task, run: Run, rid: str, err: Exception) -> dict:
    from microcircuit.sweep.worker import _write_error

    return _write_error(task, run, rid, f"{type(err).__name__}: {err}", time.time())


def collect(p: SweepPlan, sweep_dir: Path) -> pd.DataFrame:
    """Write ``results.csv`` (and ``curves.csv``, ``runs.csv``) from the runs' folders; returns the results."""
    sweep_dir = Path(sweep_dir)
    columns = p.columns
    results, curves, summary = [], [], []
    for run, rid in zip(p.runs, p.ids, strict=True):
        record = read_completion(sweep_dir, rid) or {"status": "not run", "error": ""}
        summary.append({"run": rid, **run.axes, "status": record["status"],
                        **{k: record.get(k) for k in ("simulation", "n_circuits", "engine", "steps", "wall_s",
                                                      "cpu_s", "started", "finished")},
                        "error": _last_line(record.get("error"))})
        if record["status"] != "done":
            continue
        rows = pd.read_csv(sweep_dir / "runs" / rid / "metrics.csv")
        rows["name"] = rows["phase"] + "/" + rows["metric"]
        for metric in p.sweep.metrics:
            sel = rows[rows["name"] == metric]
            if sel.empty:
                continue
            last = sel[sel["epoch"] == sel["epoch"].max()]
            for seed, value in zip(last["seed"], last["value"], strict=True):
                results.append({"run": rid, **run.axes, "seed": int(seed), "metric": metric, "value": float(value)})
        for metric in p.sweep.curves:
            sel = rows[rows["name"] == metric]
            for seed, epoch, value in zip(sel["seed"], sel["epoch"], sel["value"], strict=True):
                curves.append({"run": rid, **run.axes, "seed": int(seed), "epoch": int(epoch), "metric": metric,
                               "value": float(value)})
    table = pd.DataFrame(results, columns=["run", *columns, "seed", "metric", "value"])
    atomic_write_text(sweep_dir / "results.csv", table.to_csv(index=False))
    if p.sweep.curves:
        atomic_write_text(sweep_dir / "curves.csv", pd.DataFrame(
            curves, columns=["run", *columns, "seed", "epoch", "metric", "value"]).to_csv(index=False))
    atomic_write_text(sweep_dir / "runs.csv", pd.DataFrame(summary).to_csv(index=False))
    return table


def _last_line(text) -> str:
    lines = str(text or "").strip().splitlines()
    return lines[-1] if lines else ""


def status_counts(p: SweepPlan, sweep_dir: Path) -> dict[str, int]:
    """How many runs have each status (``not run`` for those without a completion file)."""
    counts: dict[str, int] = {}
    for rid in p.ids:
        status = (read_completion(sweep_dir, rid) or {}).get("status", "not run")
        counts[status] = counts.get(status, 0) + 1
    return counts


__all__ = ["SweepPlan", "collect", "describe", "execute", "plan", "plan_runs", "status_counts"]
