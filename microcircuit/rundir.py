"""Run directories: config, manifest, metrics, recordings, checkpoints; all writes atomic or whole-line appends.

Layout::

    <out>/<name>/<YYYYmmdd-HHMMSS>-<spechash8>/
      .lock                  held (an OS file lock) by the process writing the directory
      config.yaml            the spec file(s) as given (extends chain appended as comments)
      config.resolved.yaml   presets, defaults and $references resolved, --set applied
      manifest.json          versions, seeds, device, dtype, status, fingerprints, checkpoint checksums
      log.txt                log messages
      metrics.csv            long form: phase,epoch,seed,metric,value (whole lines appended)
      recordings/index.json  per variable: every, reduce, units, phases
      recordings/<phase>/epoch_<NNNN>.npz   chunks of [sample, circuit, batch(, neuron)] + '<var>.t' in ms
      recordings/<phase>/epochs_<NNNN>-<MMMM>.npz   a block of epochs in one chunk, + '<var>.epoch'
      checkpoints/<name>.pt  loadable with torch.load(weights_only=True); sha256 in the manifest
      figures/

Every I/O failure is raised as :class:`RunDirError`, which names the path and the operation.

Durability: config, manifest and checkpoints are fsynced before they are renamed into place. Metric
rows and recording chunks (one each per epoch) are appended or renamed at once, so a killed process
leaves them whole, but they are fsynced together, at most every :data:`SYNC_SECONDS` and always before
a checkpoint is written and when a run ends: a crash of the machine loses at most the rows and chunks after
the newest checkpoint, which ``--resume`` cuts back and writes again.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import fcntl
import hashlib
import io
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from microcircuit.checksums import sha256_hex

METRIC_COLUMNS = ("phase", "epoch", "seed", "metric", "value")
METRICS_HEADER = ",".join(METRIC_COLUMNS) + "\n"
#: files and folders a run writes (removed by ``--overwrite``; nothing else in the folder is touched)
RUN_FILES = ("config.yaml", "config.resolved.yaml", "manifest.json", "log.txt", "metrics.csv", "baseline.csv")
RUN_FOLDERS = ("recordings", "checkpoints", "figures")
#: metric rows and recording chunks are fsynced at most this often (seconds; and before each checkpoint)
SYNC_SECONDS = 2.0


class RunDirError(Exception):
    """An I/O failure in a run directory: the path, the operation and the system's reason."""

    def __init__(self, path: Path | str, operation: str, err: OSError):
        self.path, self.operation, self.errno = str(path), operation, err.errno
        reason = err.strerror or str(err)
        code = errno.errorcode.get(err.errno, "") if err.errno else ""
        super().__init__(f"{path}: cannot {operation}: {reason}" + (f" [{code}]" if code else ""))


class RunDirLocked(Exception):
    """Another process holds the run directory's lock."""


class IntegrityError(Exception):
    """A run directory's content does not match what its manifest or checkpoint recorded."""


@contextlib.contextmanager
def io_operation(path: Path | str, operation: str) -> Iterator[None]:
    """Turn an OSError raised inside into a :class:`RunDirError` naming ``path`` and ``operation``."""
    try:
        yield
    except RunDirError:
        raise
    except OSError as err:
        raise RunDirError(path, operation, err) from None


def atomic_write_bytes(path: Path, data: bytes, durable: bool = True) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder, fsync (if ``durable``) and rename.

    Raises OSError (the temporary file is removed); :class:`RunDir` wraps it in a RunDirError."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp creates 0600; results are meant to be shared
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def spec_hash(resolved_text: str) -> str:
    return sha256_hex(resolved_text)[:8]


def format_metric_lines(rows: list[tuple]) -> str:
    """CSV lines (each ending in a newline) of rows (phase, epoch, seed, metric, value)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for phase, epoch, seed, metric, value in rows:
        writer.writerow((phase, epoch, seed, metric, f"{float(value):.9g}"))
    return buf.getvalue()


def complete_metric_lines(text: str) -> tuple[list[str], int]:
    """The whole data lines of a metrics.csv text (each with its newline) and how many lines were dropped:
    a last line without its newline (torn by a crash or a full disk) and lines without five fields."""
    body = text[len(METRICS_HEADER):] if text.startswith(METRICS_HEADER) else text.partition("\n")[2]
    parts = body.split("\n")
    lines, dropped = [], 0
    for k, part in enumerate(parts):
        if k == len(parts) - 1:  # after the last newline: '' for a whole file, else a torn line
            dropped += part != ""
            break
        fields = next(csv.reader([part]), [])
        if len(fields) != len(METRIC_COLUMNS):
            dropped += 1
            continue
        lines.append(part + "\n")
    return lines, dropped


def parse_metric_line(line: str) -> tuple:
    phase, epoch, seed, metric, value = next(csv.reader([line.rstrip("\n")]))
    return phase, int(epoch), int(seed), metric, float(value)


def read_metrics_text(path: Path) -> str:
    """metrics.csv as text with torn or malformed lines dropped (header kept), for readers such as plots."""
    lines, _ = complete_metric_lines(Path(path).read_text())
    return METRICS_HEADER + "".join(lines)


class RunDir:
    """A run directory held (locked) by this process while it writes it.

    Use :meth:`create` (a new unique directory under ``out/name``), :meth:`at` (an exact path) or
    :meth:`open` (an existing run, to resume). :meth:`close` releases the lock; the kernel releases
    it too if the process dies.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.manifest: dict = {}
        self._lock_fd: int | None = None
        self._metric_rows = 0
        self._metric_digest = hashlib.sha256()
        self._unsynced: dict[Path, None] = {}  # files written but not yet fsynced, in order
        self._unsynced_since: float | None = None

    # ------------------------------------------------------------------ creation and locking
    @classmethod
    def create(cls, out: Path, name: str, resolved_text: str) -> RunDir:
        """A new directory ``out/name/<stamp>-<hash>[-k]``, made with an atomic mkdir (a name another
        process took at the same moment is skipped), locked."""
        parent = Path(out) / name
        if Path(name).name != name or name in ("", ".", ".."):
            raise ValueError(f"run name {name!r} is not a single folder name")
        with io_operation(parent, "create the folder"):
            parent.mkdir(parents=True, exist_ok=True)
        base = f"{time.strftime('%Y%m%d-%H%M%S')}-{spec_hash(resolved_text)}"
        for k in range(1000):
            path = parent / (base if k == 0 else f"{base}-{k}")
            try:
                os.mkdir(path)
            except FileExistsError:
                continue
            except OSError as err:
                raise RunDirError(path, "create the run directory", err) from None
            run = cls(path)
            run.lock()
            run._make_folders()
            return run
        raise RunDirError(parent, "create a run directory", OSError(errno.EEXIST, "1000 names taken"))

    @classmethod
    def at(cls, path: Path, overwrite: bool = False) -> RunDir:
        """The exact directory ``path`` (created if missing); an existing non-empty one only with
        ``overwrite``, and then the files of the earlier run in it are removed first."""
        path = Path(path)
        with io_operation(path, "create the run directory"):
            if path.exists() and not path.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, "exists and is not a directory")
            path.mkdir(parents=True, exist_ok=True)
        run = cls(path)
        run.lock()
        with io_operation(path, "list the run directory"):
            present = [p.name for p in path.iterdir() if p.name != ".lock"]
        if present and not overwrite:
            run.close()
            raise FileExistsError(f"run directory {path} exists and is not empty (use --overwrite)")
        with io_operation(path, "remove the earlier run's files"):
            for name in RUN_FILES:
                (path / name).unlink(missing_ok=True)
            for name in RUN_FOLDERS:
                if (path / name).is_dir():
                    shutil.rmtree(path / name)
        run._make_folders()
        return run

    @classmethod
    def open(cls, path: Path) -> RunDir:
        """An existing run directory, locked, to continue writing it (see :meth:`resume_metrics`)."""
        run = cls(path)
        run.lock()
        return run

    def _make_folders(self) -> None:
        for sub in RUN_FOLDERS:
            with io_operation(self.path / sub, "create the folder"):
                (self.path / sub).mkdir(parents=True, exist_ok=True)

    def lock(self) -> None:
        """Take the exclusive lock of this directory (``.lock``, flock), or raise :class:`RunDirLocked`."""
        lock_path = self.path / ".lock"
        with io_operation(lock_path, "open the lock file"):
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            except OSError:
                holder = ""
            os.close(fd)
            raise RunDirLocked(f"{self.path} is being written by another process"
                               + (f" (pid {holder})" if holder.isdigit() else "")
                               + ": wait for it to end, or stop it first") from None
        except OSError as err:
            os.close(fd)
            raise RunDirError(lock_path, "lock the run directory", err) from None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def close(self) -> None:
        """Release the lock."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # ------------------------------------------------------------------ config and manifest
    def write_config(self, given_text: str, resolved_text: str) -> None:
        for name, text in (("config.yaml", given_text), ("config.resolved.yaml", resolved_text)):
            with io_operation(self.path / name, "write"):
                atomic_write_text(self.path / name, text)

    def write_manifest(self, manifest: dict | None = None) -> None:
        """Write ``manifest`` (default: :attr:`manifest`, which it then becomes) atomically."""
        if manifest is not None:
            self.manifest = manifest
        path = self.path / "manifest.json"
        with io_operation(path, "write"):
            atomic_write_text(path, json.dumps(self.manifest, indent=2, sort_keys=False) + "\n")

    def read_manifest(self) -> dict:
        """The manifest; :class:`IntegrityError` if it is missing, unreadable or not a JSON object."""
        path = self.path / "manifest.json"
        try:
            data = json.loads(path.read_bytes())
        except FileNotFoundError:
            raise IntegrityError(f"{path}: missing: not a run directory") from None
        except OSError as err:
            raise RunDirError(path, "read", err) from None
        except (ValueError, UnicodeDecodeError) as err:
            raise IntegrityError(f"{path}: damaged (not valid JSON: {err}); the run cannot be verified") from None
        if not isinstance(data, dict):
            raise IntegrityError(f"{path}: damaged (a JSON {type(data).__name__}, not an object)")
        self.manifest = data
        return data

    # ------------------------------------------------------------------ durability
    def _written(self, path: Path) -> None:
        """Note a file written without fsync; fsync all such files once the oldest is SYNC_SECONDS old."""
        self._unsynced[path] = None
        now = time.monotonic()
        if self._unsynced_since is None:
            self._unsynced_since = now
        elif now - self._unsynced_since >= SYNC_SECONDS:
            self.sync()

    def sync(self) -> None:
        """fsync every metric and recording file written since the last sync (see the module docstring)."""
        for path in list(self._unsynced):
            with io_operation(path, "sync"):
                fd = os.open(path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            del self._unsynced[path]
        self._unsynced_since = None

    # ------------------------------------------------------------------ metrics
    def append_metrics(self, rows: list[tuple]) -> None:
        """Append rows (phase, epoch, seed, metric, value) as whole lines (one ``write``); the header once.

        On a failed write (full disk, ...) the file is cut back to its earlier length, so that no torn
        line stays behind, and a :class:`RunDirError` is raised."""
        path = self.path / "metrics.csv"
        text = format_metric_lines(rows)
        with io_operation(path, "append metrics to"):
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                before = os.fstat(fd).st_size
                data = (METRICS_HEADER if before == 0 else "").encode() + text.encode()
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view):]
                except OSError:
                    with contextlib.suppress(OSError):
                        os.ftruncate(fd, before)
                    raise
            finally:
                os.close(fd)
        self._written(path)
        self._metric_digest.update(text.encode())
        self._metric_rows += len(rows)

    def metrics_mark(self) -> dict:
        """How many metric rows were written and the sha256 of their lines (a checkpoint records it)."""
        return {"rows": self._metric_rows, "sha256": self._metric_digest.hexdigest()}

    def resume_metrics(self, mark: dict) -> list[tuple]:
        """Cut metrics.csv back to the rows a checkpoint recorded (``mark`` from :meth:`metrics_mark`)
        after checking they are the rows that were written; return them parsed.

        Raises:
            IntegrityError: if metrics.csv is missing, holds fewer rows, or other rows.
        """
        path = self.path / "metrics.csv"
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise IntegrityError(f"{path}: missing; the checkpoint was written after {mark['rows']} rows") from None
        except (OSError, UnicodeDecodeError) as err:
            raise IntegrityError(f"{path}: unreadable ({err})") from None
        lines, _ = complete_metric_lines(text)
        n = mark["rows"]
        if len(lines) < n:
            raise IntegrityError(f"{path}: holds {len(lines)} rows, but the checkpoint was written after {n}: "
                                 "rows were lost")
        kept = "".join(lines[:n])
        if sha256_hex(kept) != mark["sha256"]:
            raise IntegrityError(f"{path}: its first {n} rows differ from those the checkpoint recorded "
                                 "(the file was edited)")
        with io_operation(path, "rewrite"):
            atomic_write_text(path, METRICS_HEADER + kept)
        self._metric_digest = hashlib.sha256(kept.encode())
        self._metric_rows = n
        return [parse_metric_line(line) for line in lines[:n]]

    # ------------------------------------------------------------------ recordings
    def write_recording_index(self, index: dict) -> None:
        path = self.path / "recordings" / "index.json"
        with io_operation(path, "write"):
            atomic_write_text(path, json.dumps(index, indent=2) + "\n")

    def write_chunk(self, phase: str, epochs: int | list[int], arrays: dict[str, np.ndarray]) -> None:
        """One recording chunk of one epoch (``epoch_<NNNN>.npz``) or of a block of epochs presented in one
        engine call (``epochs_<first>-<last>.npz``, each sample's epoch in ``<var>.epoch``), written whole (temp
        file + rename; fsynced with the next :meth:`sync`)."""
        labels = [epochs] if isinstance(epochs, int) else list(epochs)
        name = (f"epoch_{labels[0]:04d}" if labels[0] == labels[-1] else f"epochs_{labels[0]:04d}-{labels[-1]:04d}")
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        path = self.path / "recordings" / phase / f"{name}.npz"
        with io_operation(path, "write the recording"):
            atomic_write_bytes(path, buf.getvalue(), durable=False)
        self._written(path)

    # ------------------------------------------------------------------ checkpoints
    def write_checkpoint(self, name: str, payload: dict) -> Path:
        """Write ``checkpoints/<name>.pt`` atomically, then record its size, sha256 and cursor in the manifest."""
        buf = io.BytesIO()
        torch.save(payload, buf)
        data = buf.getvalue()
        path = self.path / "checkpoints" / f"{name}.pt"
        self.sync()  # the rows and chunks the checkpoint's cursor counts are durable before it is
        with io_operation(path, "write the checkpoint"):
            atomic_write_bytes(path, data)
        cursor = payload.get("cursor", {})
        self.manifest.setdefault("checkpoints", {})[name] = {
            "file": f"checkpoints/{name}.pt", "bytes": len(data), "sha256": sha256_hex(data),
            "cursor": [cursor.get("phase", 0), cursor.get("epoch", 0)], "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        self.write_manifest()
        return path

    def intact_checkpoints(self) -> Iterator[tuple[str | None, dict | None, list[str]]]:
        """(name, payload, notes) of the recorded checkpoints that pass their checksum and load, furthest
        protocol cursor first (``final`` first of all). ``notes`` say which newer ones were skipped and why,
        and which ``.pt`` files the manifest does not know (ignored); notes after the last intact one come
        with name and payload None."""
        recorded = self.manifest.get("checkpoints") or {}
        notes = []
        known = {entry.get("file") for entry in recorded.values() if isinstance(entry, dict)}
        folder = self.path / "checkpoints"
        with contextlib.suppress(OSError):
            for stray in sorted(folder.glob("*.pt")):
                if f"checkpoints/{stray.name}" not in known:
                    notes.append(f"{stray}: ignored (not recorded in the manifest)")

        def order(item):
            name, entry = item
            cursor = entry.get("cursor", [0, 0]) if isinstance(entry, dict) else [0, 0]
            return (name == "final", tuple(cursor), entry.get("written", "") if isinstance(entry, dict) else "")

        for name, entry in sorted(recorded.items(), key=order, reverse=True):
            path = self.path / str(entry.get("file", "")) if isinstance(entry, dict) else folder / f"{name}.pt"
            try:
                data = path.read_bytes()
            except OSError as err:
                notes.append(f"{path}: unreadable ({err.strerror or err}); skipped")
                continue
            if len(data) != entry.get("bytes") or sha256_hex(data) != entry.get("sha256"):
                notes.append(f"{path}: damaged (checksum differs from the manifest's); skipped")
                continue
            try:
                payload = torch.load(io.BytesIO(data), weights_only=True)
            except Exception as err:  # noqa: BLE001 - any failure to load means: not usable
                notes.append(f"{path}: cannot be loaded ({type(err).__name__}); skipped")
                continue
            yield name, payload, notes
            notes = []
        if notes:
            yield None, None, notes


__all__ = [
    "METRIC_COLUMNS",
    "IntegrityError",
    "RunDir",
    "RunDirError",
    "RunDirLocked",
    "atomic_write_bytes",
    "atomic_write_text",
    "io_operation",
    "read_metrics_text",
]
