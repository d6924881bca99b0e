"""Run directories that cannot be mixed, corrupted, raced or escaped, and no traceback on any fault.

Each test names the promise of docs/reliability.md it checks. Runs are tiny bars runs (t_pres 3-5
steps); where a signal or a second process is involved, the command runs in a real subprocess.
"""

from __future__ import annotations

import csv
import errno
import gzip
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from microcircuit.cli import main
from microcircuit.exitcodes import EXIT_INT, EXIT_IO, EXIT_LOCKED, EXIT_SPEC, EXIT_TERM
from microcircuit.rundir import RunDir
from microcircuit.tasks.idx import IMAGES_MAGIC, read_idx, write_idx
from tests.conftest import CIRCUITS, ROOT
from tests.test_idx import write_dataset

BARS = str(CIRCUITS / "bars_le.yaml")
TINY = ["-q", "--no-plot", "--set", "parameters.t_pres=3", "--set", "protocol.0.epochs=30",
        "--set", "protocol.0.validate_every=10", "--set", "checkpoint_every=10"]
#: a run long enough to be stopped mid-way (about 4 s on one core)
LONG = ["-q", "--no-plot", "--set", "parameters.t_pres=20", "--set", "protocol.0.epochs=300"]


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "microcircuit", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout, env=env)


def start(*args: str) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "microcircuit", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def wait_for_rows(metrics: Path, rows: int, timeout: float = 90) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and (not metrics.exists() or metrics.read_text().count("\n") < rows):
        time.sleep(0.02)
    assert metrics.exists() and metrics.read_text().count("\n") >= rows, "the run did not get going"


def manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())


def one_line(text: str) -> str:
    """The stderr of a refused command: exactly one 'error:' line and no traceback."""
    assert "Traceback" not in text, text
    errors = [line for line in text.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, text
    return errors[0]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished tiny run with checkpoints start, train_epoch_0010/20/30 and final."""
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    assert main(["run", BARS, *TINY, "--run-dir", str(run_dir)]) == 0
    return run_dir


def interrupted_copy(finished: Path, tmp_path: Path) -> Path:
    """A copy of ``finished`` that says it was interrupted (so that --resume continues it)."""
    import shutil

    run_dir = tmp_path / "copy"
    shutil.copytree(finished, run_dir)
    m = manifest(run_dir)
    m["status"] = "interrupted"
    (run_dir / "manifest.json").write_text(json.dumps(m))
    return run_dir


# ---------------------------------------------------------------------- 1. integrity on resume
def test_the_manifest_records_fingerprints_and_checkpoint_checksums(finished):
    m = manifest(finished)
    assert set(m["fingerprint"]) == {"spec_sha256", "data", "version"}
    assert m["fingerprint"]["data"] == {"source": "generated", "task": "bars"}
    assert set(m["checkpoints"]) == {"start", "train_epoch_0010", "train_epoch_0020", "train_epoch_0030", "final"}
    from microcircuit.checksums import file_sha256

    for entry in m["checkpoints"].values():
        assert file_sha256(finished / entry["file"]) == entry["sha256"]


def test_a_completed_run_is_not_resumed(finished, capsys):
    assert main(["run", "--resume", str(finished), "-q"]) == 0
    assert "nothing to resume" in capsys.readouterr().out


def test_resume_refuses_an_edited_resolved_spec_naming_the_key(finished, tmp_path):
    run_dir = interrupted_copy(finished, tmp_path)
    path = run_dir / "config.resolved.yaml"
    path.write_text(path.read_text().replace("t_pres: 3", "t_pres: 10", 1))
    res = cli("run", "--resume", str(run_dir), "-q", "--no-plot")
    assert res.returncode == EXIT_SPEC
    line = one_line(res.stderr)
    assert "config.resolved.yaml was changed after the run started" in line and "parameters.t_pres: 3 -> 10" in line


def test_a_damaged_newest_checkpoint_falls_back_to_the_newest_intact_one(finished, tmp_path, capsys):
    run_dir = interrupted_copy(finished, tmp_path)
    final = run_dir / "checkpoints" / "final.pt"
    data = bytearray(final.read_bytes())
    for k in range(len(data) - 200, len(data) - 190):  # a few flipped bytes in the tensor data
        data[k] ^= 0xFF
    final.write_bytes(bytes(data))
    (run_dir / "checkpoints" / "stray.pt").write_bytes(b"not a checkpoint")  # and an unreadable stray file
    assert main(["run", "--resume", str(run_dir), "-q", "--no-plot"]) == 0
    err = capsys.readouterr().err
    assert "final.pt: damaged (checksum differs from the manifest's); skipped" in err
    assert "stray.pt: ignored (not recorded in the manifest)" in err
    assert manifest(run_dir)["resumed"][-1]["from"] == "checkpoints/train_epoch_0030.pt"
    # the resumed run redid the test phase from epoch 30 and ended exactly as the original
    assert (run_dir / "metrics.csv").read_text() == (finished / "metrics.csv").read_text()
    a = torch.load(finished / "checkpoints" / "final.pt", weights_only=True)["state"]
    b = torch.load(final, weights_only=True)["state"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_damaged_manifest_is_refused_in_one_line(finished, tmp_path):
    run_dir = interrupted_copy(finished, tmp_path)
    (run_dir / "manifest.json").write_text('{"status": "interrupted", "seeds": [1')
    res = cli("run", "--resume", str(run_dir), "-q")
    assert res.returncode == EXIT_SPEC
    assert "manifest.json: damaged (not valid JSON" in one_line(res.stderr)


@pytest.mark.parametrize("damage", ["deleted", "fewer rows", "edited row"])
def test_a_metrics_file_that_does_not_match_its_checkpoint_is_refused(finished, tmp_path, damage):
    run_dir = interrupted_copy(finished, tmp_path)
    metrics = run_dir / "metrics.csv"
    lines = metrics.read_text().splitlines(keepends=True)
    if damage == "deleted":
        metrics.unlink()
    elif damage == "fewer rows":
        metrics.write_text("".join(lines[:5]))
    else:
        lines[3] = lines[3].replace(lines[3].split(",")[-1], "0.5\n")
        metrics.write_text("".join(lines))
    res = cli("run", "--resume", str(run_dir), "-q")
    assert res.returncode == EXIT_SPEC
    line = one_line(res.stderr)
    assert "metrics.csv" in line and {"deleted": "missing", "fewer rows": "rows were lost",
                                      "edited row": "differ from those the checkpoint recorded"}[damage] in line


def test_a_torn_last_metrics_line_is_dropped_on_resume_and_on_read(finished, tmp_path):
    from microcircuit.plotting import load_run

    run_dir = interrupted_copy(finished, tmp_path)
    metrics = run_dir / "metrics.csv"
    metrics.write_text(metrics.read_text() + "test,30,1,accur")  # a line cut by a crash
    assert len(load_run(run_dir).metrics) == (finished / "metrics.csv").read_text().count("\n") - 1
    assert main(["run", "--resume", str(run_dir), "-q", "--no-plot"]) == 0
    assert metrics.read_text() == (finished / "metrics.csv").read_text()


@pytest.mark.parametrize("option", [["--set", "parameters.t_pres=10"], ["--seeds", "2"], ["--dtype", "float64"],
                                    ["--engine", "eager"], [BARS]])
def test_options_that_cannot_change_on_resume_are_a_usage_error(finished, tmp_path, option, capsys):
    run_dir = interrupted_copy(finished, tmp_path)
    assert main(["run", "--resume", str(run_dir), *option]) == EXIT_SPEC
    assert "cannot be given with --resume" in one_line(capsys.readouterr().err)


def _fashion_spec(tmp_path: Path, data: Path) -> list[str]:
    return ["run", str(CIRCUITS / "fashion_mnist_le.yaml"), "--data-dir", str(data), "-q", "--no-plot",
            "--set", "task.fashion_mnist.validation=8", "--set", "protocol.0.epochs=2",
            "--set", "protocol.0.batch=8", "--set", "protocol.0.validate_every=0", "--set", "protocol.1.batch=10",
            "--set", "parameters.t_pres=3", "--run-dir", str(tmp_path / "run")]


def test_resume_checks_the_data_identity(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MICROCIRCUIT_DATA", raising=False)
    write_dataset(tmp_path / "a", n_train=40, n_test=10)
    write_dataset(tmp_path / "copy_of_a", n_train=40, n_test=10)
    write_dataset(tmp_path / "b", n_train=41, n_test=10)
    assert main(_fashion_spec(tmp_path, tmp_path / "a")) == 0
    run_dir = tmp_path / "run"
    files = manifest(run_dir)["fingerprint"]["data"]["files"]
    assert set(files) == {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                          "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"}
    m = manifest(run_dir)
    m["status"] = "interrupted"
    (run_dir / "manifest.json").write_text(json.dumps(m))
    capsys.readouterr()
    assert main(["run", "--resume", str(run_dir), "--data-dir", str(tmp_path / "b"), "-q"]) == EXIT_SPEC
    line = one_line(capsys.readouterr().err)
    assert "the data differ from the run's: different content in" in line and "train-images-idx3-ubyte.gz" in line
    # the same files in another folder are the same data
    assert main(["run", "--resume", str(run_dir), "--data-dir", str(tmp_path / "copy_of_a"), "-q",
                 "--no-plot"]) == 0


def test_a_directory_without_integrity_records_is_refused(finished, tmp_path):
    run_dir = interrupted_copy(finished, tmp_path)
    m = manifest(run_dir)
    del m["fingerprint"]
    (run_dir / "manifest.json").write_text(json.dumps(m))
    res = cli("run", "--resume", str(run_dir), "-q")
    assert res.returncode == EXIT_SPEC and "has no fingerprint" in one_line(res.stderr)


# ---------------------------------------------------------------------- 2. locks and races
def test_a_run_directory_in_use_is_refused(finished, tmp_path):
    """Another process holds the lock (here: this test process): a resume exits 75 and changes nothing."""
    run_dir = interrupted_copy(finished, tmp_path)
    holder = RunDir.open(run_dir)
    try:
        before = (run_dir / "metrics.csv").read_text()
        res = cli("run", "--resume", str(run_dir), "-q")
        assert res.returncode == EXIT_LOCKED
        assert "is being written by another process" in one_line(res.stderr)
        assert (run_dir / "metrics.csv").read_text() == before
    finally:
        holder.close()


@pytest.mark.slow  # a run in a subprocess, stopped mid-way, then resumed (15-25 s)
def test_two_resumes_at_once_one_runs_the_other_is_refused(tmp_path):
    run_dir = tmp_path / "run"  # long enough that the first resume still runs when the second starts
    proc = start("run", BARS, *LONG, "--set", "protocol.0.epochs=5000", "--run-dir", str(run_dir))
    wait_for_rows(run_dir / "metrics.csv", 30)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == EXIT_INT
    first = start("run", "--resume", str(run_dir), "-q", "--no-plot")
    deadline = time.time() + 60
    while time.time() < deadline and manifest(run_dir)["status"] != "running":
        time.sleep(0.02)
    second = cli("run", "--resume", str(run_dir), "-q")
    first.send_signal(signal.SIGINT)
    _, err = first.communicate(timeout=60)
    assert first.returncode == EXIT_INT, err
    assert second.returncode == EXIT_LOCKED and "being written by another process" in one_line(second.stderr)
    rows = list(csv.reader(open(run_dir / "metrics.csv")))
    keys = [tuple(r[:4]) for r in rows[1:]]
    assert len(keys) == len(set(keys)), "no duplicated rows"


def _create(args) -> str:
    out, barrier = args
    barrier.wait()
    run = RunDir.create(Path(out), "same", "the same resolved spec")
    run.close()
    return str(run.path)


def test_runs_created_at_the_same_instant_get_their_own_directories(tmp_path):
    ctx = multiprocessing.get_context("fork")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(6)
        with ctx.Pool(6) as pool:
            paths = pool.map(_create, [(str(tmp_path), barrier)] * 6)
    assert len(set(paths)) == 6
    assert all(Path(p).parent == tmp_path / "same" for p in paths)


# ---------------------------------------------------------------------- 3. signals
@pytest.mark.slow  # a run in a subprocess, stopped mid-way, then resumed (15-25 s)
@pytest.mark.parametrize("signals", [(signal.SIGINT, signal.SIGINT), (signal.SIGINT, signal.SIGTERM),
                                     (signal.SIGTERM, signal.SIGINT)])
def test_a_second_signal_while_the_checkpoint_is_written_is_ignored(tmp_path, signals):
    run_dir = tmp_path / "run"
    proc = start("run", BARS, *LONG, "--run-dir", str(run_dir))
    wait_for_rows(run_dir / "metrics.csv", 20)
    proc.send_signal(signals[0])
    time.sleep(0.003)  # within 5 ms
    proc.send_signal(signals[1])
    _, err = proc.communicate(timeout=60)
    # the first signal handled wins; two signals that arrive while the compiled kernel runs are handled
    # in signal-number order when it returns (SIGINT before SIGTERM), so either code is right here
    assert proc.returncode in (EXIT_INT, EXIT_TERM), err
    assert "Traceback" not in err
    m = manifest(run_dir)
    assert m["status"] == {EXIT_INT: "interrupted", EXIT_TERM: "terminated"}[proc.returncode]
    assert "interrupted" in m["checkpoints"]
    res = cli("run", "--resume", str(run_dir), "-q", "--no-plot")
    assert res.returncode == 0, res.stderr
    assert manifest(run_dir)["status"] == "done"


@pytest.mark.slow  # a run in a subprocess, stopped mid-way, then resumed (15-25 s)
def test_a_kill_9_of_a_shipped_spec_is_resumable(tmp_path):
    """Shipped specs checkpoint at the start and then periodically: a kill -9 never loses the run."""
    run_dir = tmp_path / "run"
    proc = start("run", BARS, *LONG, "--run-dir", str(run_dir))
    wait_for_rows(run_dir / "metrics.csv", 30)
    proc.kill()
    proc.communicate(timeout=30)
    assert manifest(run_dir)["status"] == "running"
    res = cli("run", "--resume", str(run_dir), "-q", "--no-plot")
    assert res.returncode == 0, res.stderr
    assert manifest(run_dir)["status"] == "done"


def test_the_wall_time_checkpoint_period(tmp_path):
    """checkpoint_minutes: a checkpoint at the first boundary of a block of epochs (the epochs one engine call
    presents: 6 of the 8 bars stimuli) after that much wall time."""
    run_dir = tmp_path / "run"
    assert main(["run", BARS, "-q", "--no-plot", "--set", "parameters.t_pres=3", "--set", "protocol.0.epochs=13",
                 "--set", "checkpoint_every=0", "--set", "checkpoint_minutes=1e-9", "--run-dir", str(run_dir)]) == 0
    assert {"train_epoch_0006", "train_epoch_0012", "train_epoch_0013"} <= set(manifest(run_dir)["checkpoints"])


# ---------------------------------------------------------------------- 4. I/O faults
def _fail_writes_after(monkeypatch, calls: int, code: int = errno.ENOSPC) -> None:
    import microcircuit.rundir as rundir

    real = os.write
    count = {"n": 0}

    def write(fd, data):
        count["n"] += 1
        if count["n"] > calls:
            written = real(fd, bytes(data)[: len(data) // 2])  # a torn half line, then the disk is full
            assert written >= 0
            raise OSError(code, os.strerror(code))
        return real(fd, data)

    monkeypatch.setattr(rundir.os, "write", write)


def test_a_full_disk_stops_the_run_with_one_line_and_a_resumable_directory(tmp_path, monkeypatch, capsys):
    run_dir = tmp_path / "run"
    _fail_writes_after(monkeypatch, calls=6)
    code = main(["run", BARS, *TINY, "--run-dir", str(run_dir)])
    assert code == EXIT_IO
    line = one_line(capsys.readouterr().err)
    assert "metrics.csv: cannot append metrics to: No space left on device [ENOSPC]" in line
    m = manifest(run_dir)
    assert m["status"] == "failed" and "No space left on device" in m["failure"]
    text = (run_dir / "metrics.csv").read_text()
    assert text.endswith("\n") and all(len(r) == 5 for r in csv.reader(text.splitlines()))
    monkeypatch.undo()
    assert main(["run", "--resume", str(run_dir), "-q", "--no-plot"]) == 0
    assert manifest(run_dir)["status"] == "done"


def test_a_full_tmpfs(tmp_path):
    """The real thing where this machine allows mounting a small tmpfs (root); skipped otherwise."""
    mount = tmp_path / "small"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        res = cli("run", BARS, "-q", "--no-plot", "--set", "parameters.t_pres=3",
                  "--set", "record=[{var: pyr_1.apical.v, every: 1}]", "--run-dir", str(mount / "run"))
        assert res.returncode == EXIT_IO, res.stderr
        assert "No space left on device" in one_line(res.stderr)
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)


def test_out_or_run_dir_that_is_a_file_is_one_line(tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for option in (["--out", str(a_file)], ["--out", str(a_file / "below")], ["--run-dir", str(a_file)]):
        assert main(["run", BARS, *TINY, *option]) == EXIT_IO
        assert str(a_file) in one_line(capsys.readouterr().err)


def test_a_read_only_out_is_one_line(tmp_path, monkeypatch, capsys):
    out = tmp_path / "ro"
    out.mkdir()
    if os.geteuid() != 0:  # the real thing; root ignores permissions, so there it is injected
        out.chmod(0o500)
    else:
        real = os.mkdir

        def mkdir(path, *args, **kwargs):
            if str(path).startswith(str(out)):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
            return real(path, *args, **kwargs)

        monkeypatch.setattr(os, "mkdir", mkdir)
    try:
        assert main(["run", BARS, *TINY, "--out", str(out)]) == EXIT_IO
        assert str(out) in one_line(capsys.readouterr().err)
    finally:
        out.chmod(0o700)


# ---------------------------------------------------------------------- 5. names and paths
@pytest.mark.parametrize("name", ["../../x", "/abs", "a/b", "..", "a\0b", "x" * 300, " lead", "-dash"])
def test_unsafe_names_are_located_spec_errors_and_nothing_is_written(tmp_path, name, capsys):
    out = tmp_path / "out"
    assert main(["validate", BARS, "--set", f"name={json.dumps(name)}"]) == EXIT_SPEC
    assert main(["run", BARS, *TINY, "--out", str(out), "--set", f"name={json.dumps(name)}"]) == EXIT_SPEC
    err = capsys.readouterr().err
    assert "<command line>" in err and "a name must be one folder name" in err and "Traceback" not in err
    assert not out.exists() and not (tmp_path.parent / "x").exists()


def test_extends_errors_name_the_referring_line_and_never_show_the_other_file(tmp_path, capsys):
    secret = tmp_path / "secret.txt"
    secret.write_text("password: hunter2\n- not a mapping at all\n" * 3)
    plain = tmp_path / "plain.txt"
    plain.write_text("hunter2 is the password")
    for target in (plain, tmp_path / "missing.yaml"):
        spec = tmp_path / "spec.yaml"
        spec.write_text(f"# a spec\nextends: {target}\nname: x\n")
        assert main(["validate", str(spec)]) == EXIT_SPEC
        err = capsys.readouterr().err
        assert f"{spec}:2:1: error: extends:" in err and "hunter2" not in err


# ---------------------------------------------------------------------- 6. bounded input
def test_an_idx_file_declaring_millions_of_images_is_refused_before_reading(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    header = IMAGES_MAGIC.to_bytes(4, "big") + np.asarray([3_000_000, 28, 28], dtype=">i4").tobytes()
    with gzip.open(path, "wb") as f:
        f.write(header + bytes(1000))
    with pytest.raises(ValueError, match=r"declares shape \(3000000, 28, 28\) = 2,352,000,000 bytes, above the limit"):
        read_idx(path, IMAGES_MAGIC)
    header = IMAGES_MAGIC.to_bytes(4, "big") + np.asarray([300_000, 28, 28], dtype=">i4").tobytes()
    with gzip.open(path, "wb") as f:
        f.write(header + bytes(1000))
    with pytest.raises(ValueError, match="more than a gzip file of .* bytes can hold"):
        read_idx(path, IMAGES_MAGIC)


def test_only_the_asked_for_images_are_kept_in_memory(tmp_path):
    import tracemalloc

    images = np.random.default_rng(0).integers(0, 256, (20_000, 28, 28), dtype=np.uint8)
    path = write_idx(tmp_path / "x.gz", images)  # 15.7 MB of images
    tracemalloc.start()
    part = read_idx(path, IMAGES_MAGIC, [(0, 100), (19_900, 20_000)])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert np.array_equal(part, np.concatenate([images[:100], images[-100:]]))
    assert peak < 4 << 20, f"peak {peak / 2**20:.1f} MiB: the whole file was held"


# ---------------------------------------------------------------------- 7. claims: seeds
@pytest.mark.parametrize("dtype, tolerance", [("float64", 1e-12), ("float32", 1e-4)])
def test_circuit_i_of_a_batch_equals_the_single_run_of_seed_master_plus_i(tmp_path, dtype, tolerance):
    """README: circuit i of --seeds N is the run of --seed master+i. Float64: equal to 1e-12 (relative,
    weights after 30 epochs of learning); float32: to 1e-4, since a one-circuit run sums and rounds in
    another order than a batch (docs/reliability.md, "Reproducibility") and learning amplifies those
    last-bit differences (measured: 6e-7 absolute in weights of about 1)."""
    args = ["run", BARS, *TINY, "--dtype", dtype]
    assert main([*args, "--seeds", "3", "--run-dir", str(tmp_path / "batch")]) == 0
    assert main([*args, "--seed", "3", "--run-dir", str(tmp_path / "single")]) == 0
    a = torch.load(tmp_path / "batch" / "checkpoints" / "final.pt", weights_only=True)["state"]
    b = torch.load(tmp_path / "single" / "checkpoints" / "final.pt", weights_only=True)["state"]
    for key in (k for k in a if k.startswith("weights/")):
        scale = b[key][0].abs().max()
        assert (a[key][2] - b[key][0]).abs().max() <= tolerance * scale, key


def test_metric_rows_and_chunks_are_synced_before_a_checkpoint(tmp_path, monkeypatch):
    """Per-epoch rows and chunks are not fsynced one by one, but all of them before a checkpoint is written
    (so that a machine crash loses only what --resume redoes), and once the oldest is SYNC_SECONDS old."""
    import microcircuit.rundir as rundir

    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(Path(os.readlink(f"/proc/self/fd/{fd}")).name)
        real_fsync(fd)

    monkeypatch.setattr(rundir.os, "fsync", recording_fsync)
    clock = [100.0]
    monkeypatch.setattr(rundir.time, "monotonic", lambda: clock[0])
    run = RunDir.create(tmp_path, "sync_test", "x: 1\n")
    synced.clear()
    run.append_metrics([("train", 1, 0, "loss", 0.5)])
    run.write_chunk("train", 1, {"a": np.zeros(3)})
    run.append_metrics([("train", 2, 0, "loss", 0.4)])
    assert synced == []  # nothing durable yet: within the window
    run.write_checkpoint("epoch_0002", {"cursor": {"phase": 0, "epoch": 2}})
    # the rows and the chunk first, then the checkpoint (fsynced before its rename), then the manifest
    assert synced[:2] == ["metrics.csv", "epoch_0001.npz"]
    assert synced[2].startswith(".epoch_0002.pt.") and synced[3].startswith(".manifest.json.")
    synced.clear()
    run.append_metrics([("train", 3, 0, "loss", 0.3)])
    clock[0] += rundir.SYNC_SECONDS - 0.5
    run.write_chunk("train", 3, {"a": np.zeros(3)})
    assert synced == []
    clock[0] += 1.0  # the oldest unsynced write is now older than SYNC_SECONDS: the next write syncs all
    run.append_metrics([("train", 4, 0, "loss", 0.2)])
    assert synced == ["metrics.csv", "epoch_0003.npz"]
    run.close()
