"""Run directories: config, manifest, metrics, recordings, checkpoints; all writes atomic or append-only.

Layout::

    <out>/<name>/<YYYYmmdd-HHMMSS>-<spechash8>/
      config.yaml            the spec file(s) as given (extends chain appended as comments)
      config.resolved.yaml   presets, defaults and $references resolved, --set applied
      manifest.json          versions, git commit, seeds (master, per circuit, derived), device, dtype, status
      log.txt                log messages
      metrics.csv            long form: phase,epoch,seed,metric,value (append-only, flushed per epoch)
      recordings/index.json  per variable: every, reduce, units, phases
      recordings/<phase>/epoch_<NNNN>.npz   chunks of [sample, circuit, batch(, neuron)] + '<var>.t' in ms
      checkpoints/epoch_<NNNN>.pt, checkpoints/final.pt   loadable with torch.load(weights_only=True)
      figures/
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder, fsync and rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp creates 0600; results are meant to be shared
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def spec_hash(resolved_text: str) -> str:
    return hashlib.sha256(resolved_text.encode()).hexdigest()[:8]


class RunDir:
    """A run directory being written.

    Args:
        path: the directory (created; an existing non-empty one is refused unless ``overwrite``).
    """

    METRIC_COLUMNS = ("phase", "epoch", "seed", "metric", "value")

    def __init__(self, path: Path, overwrite: bool = False):
        self.path = Path(path)
        if self.path.exists() and any(self.path.iterdir()) and not overwrite:
            raise FileExistsError(f"run directory {self.path} exists and is not empty (use --overwrite)")
        for sub in ("recordings", "checkpoints", "figures"):
            (self.path / sub).mkdir(parents=True, exist_ok=True)
        self._metrics_file = None

    @classmethod
    def create(cls, out: Path, name: str, resolved_text: str, overwrite: bool = False) -> RunDir:
        """A new uniquely named run directory under ``out/name``."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = Path(out) / name / f"{stamp}-{spec_hash(resolved_text)}"
        path, i = base, 1
        while path.exists() and not overwrite:
            path, i = base.with_name(f"{base.name}-{i}"), i + 1
        return cls(path, overwrite=overwrite)

    # ------------------------------------------------------------------ config and manifest
    def write_config(self, given_text: str, resolved_text: str) -> None:
        atomic_write_text(self.path / "config.yaml", given_text)
        atomic_write_text(self.path / "config.resolved.yaml", resolved_text)

    def write_manifest(self, manifest: dict) -> None:
        atomic_write_text(self.path / "manifest.json", json.dumps(manifest, indent=2, sort_keys=False) + "\n")

    def read_manifest(self) -> dict:
        return json.loads((self.path / "manifest.json").read_text())

    # ------------------------------------------------------------------ metrics
    def append_metrics(self, rows: list[tuple]) -> None:
        """Append rows (phase, epoch, seed, metric, value) and flush; the header is written once."""
        path = self.path / "metrics.csv"
        if self._metrics_file is None:
            new = not path.exists() or path.stat().st_size == 0
            self._metrics_file = open(path, "a", newline="")  # noqa: SIM115 (kept open for appends)
            if new:
                csv.writer(self._metrics_file).writerow(self.METRIC_COLUMNS)
        buf = io.StringIO()
        writer = csv.writer(buf)
        for phase, epoch, seed, metric, value in rows:
            writer.writerow((phase, epoch, seed, metric, f"{float(value):.9g}"))
        self._metrics_file.write(buf.getvalue())
        self._metrics_file.flush()
        os.fsync(self._metrics_file.fileno())

    def close(self) -> None:
        if self._metrics_file is not None:
            self._metrics_file.close()
            self._metrics_file = None

    # ------------------------------------------------------------------ recordings
    def write_recording_index(self, index: dict) -> None:
        atomic_write_text(self.path / "recordings" / "index.json", json.dumps(index, indent=2) + "\n")

    def write_chunk(self, phase: str, epoch: int, arrays: dict[str, np.ndarray]) -> None:
        """One recording chunk, written whole (temp file + rename)."""
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        atomic_write_bytes(self.path / "recordings" / phase / f"epoch_{epoch:04d}.npz", buf.getvalue())

    # ------------------------------------------------------------------ checkpoints
    def truncate_metrics(self, n_rows: int) -> list[tuple]:
        """Keep the header and the first ``n_rows`` rows of metrics.csv (rows a resumed run will write
        again are dropped), atomically; return the kept rows as (phase, epoch, seed, metric, value)."""
        path = self.path / "metrics.csv"
        rows: list[tuple] = []
        if path.exists():
            with open(path, newline="") as f:
                reader = csv.reader(f)
                next(reader, None)
                for row in reader:
                    if len(rows) == n_rows:
                        break
                    if len(row) == 5:
                        rows.append((row[0], int(row[1]), int(row[2]), row[3], float(row[4])))
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(self.METRIC_COLUMNS)
        for phase, epoch, seed, metric, value in rows:
            writer.writerow((phase, epoch, seed, metric, f"{value:.9g}"))
        atomic_write_text(path, buf.getvalue())
        return rows

    def latest_checkpoint(self) -> Path | None:
        """The checkpoint with the furthest protocol cursor (the final one if present)."""
        candidates = sorted((self.path / "checkpoints").glob("*.pt"))
        if not candidates:
            return None
        final = self.path / "checkpoints" / "final.pt"
        if final in candidates:
            return final

        def cursor(path: Path) -> tuple[int, int]:
            c = torch.load(path, weights_only=True)["cursor"]
            return (c["phase"], c["epoch"])

        return max(candidates, key=cursor)

    def write_checkpoint(self, name: str, payload: dict) -> Path:
        buf = io.BytesIO()
        torch.save(payload, buf)
        path = self.path / "checkpoints" / f"{name}.pt"
        atomic_write_bytes(path, buf.getvalue())
        return path
