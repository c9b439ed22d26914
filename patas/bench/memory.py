"""Peak memory while a block runs: this process, its child processes (dbt), and the Postgres server.

A background thread samples every ``interval`` seconds:

- ``client``: resident set of this process plus all its descendants (dbt subprocesses);
- ``server``: proportional set size (PSS; shared buffers counted once, not per backend) summed
  over the Postgres server's process tree, when the server runs on this machine and its processes
  are readable; ``None`` otherwise. It includes the shared buffers the server has touched (the
  embedded server's are 512 MB) and the backends of *every* database on that server, so run the
  benchmark on a server of its own for a clean figure.

Sampling misses spikes shorter than the interval; ``resource.getrusage`` gives the exact peak of
this process itself (``self_peak_mb``), which :meth:`MemorySampler.phase` also reports.
"""

from __future__ import annotations

import contextlib
import resource
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import psutil

MB = 1024 * 1024


@dataclass
class PhasePeak:
    client_mb: float = 0.0
    server_mb: float | None = None
    self_peak_mb: float = 0.0

    def as_dict(self) -> dict[str, float | None]:
        return {
            "client_peak_rss_mb": round(self.client_mb, 1),
            "server_peak_pss_mb": None if self.server_mb is None else round(self.server_mb, 1),
        }


def _tree_rss(proc: psutil.Process) -> float:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total / MB


def _tree_pss(proc: psutil.Process) -> float | None:
    total = 0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return None
    for p in procs:
        try:
            info = p.memory_full_info()
        except psutil.NoSuchProcess:
            continue
        except psutil.Error:
            return None
        total += getattr(info, "pss", info.rss)
    return total / MB


def self_peak_mb() -> float:
    """The exact peak resident set of this process since it started (Linux: ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class MemorySampler:
    server_pid: int | None = None
    interval: float = 0.25
    _current: PhasePeak = field(default_factory=PhasePeak)
    _overall: PhasePeak = field(default_factory=PhasePeak)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self._me = psutil.Process()
        self._server: psutil.Process | None = None
        if self.server_pid is not None:
            with contextlib.suppress(psutil.Error):
                self._server = psutil.Process(self.server_pid)

    def _sample(self) -> None:
        client = _tree_rss(self._me)
        server = _tree_pss(self._server) if self._server is not None else None
        with self._lock:
            for peak in (self._current, self._overall):
                peak.client_mb = max(peak.client_mb, client)
                if server is not None:
                    peak.server_mb = max(peak.server_mb or 0.0, server)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> MemorySampler:
        self._sample()
        self._thread = threading.Thread(target=self._loop, name="bench-memory", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    @contextlib.contextmanager
    def phase(self) -> Iterator[PhasePeak]:
        """Peaks of one block; the yielded object is filled in when the block ends."""
        with self._lock:
            self._current = PhasePeak()
        self._sample()
        result = PhasePeak()
        try:
            yield result
        finally:
            self._sample()
            with self._lock:
                result.client_mb = self._current.client_mb
                result.server_mb = self._current.server_mb
            result.self_peak_mb = self_peak_mb()

    @property
    def overall(self) -> PhasePeak:
        with self._lock:
            return PhasePeak(self._overall.client_mb, self._overall.server_mb, self_peak_mb())
