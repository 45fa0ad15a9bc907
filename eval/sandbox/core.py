"""Public API of the sandbox: limits, requests, results, status classification and the zygote worker pool.

Status semantics (``passed`` is the only success):

- ``passed``: the program (and its tests) exited with code 0, and, when the run was given an ``end_marker``, printed
  that marker (on stdout or stderr, anywhere in the output, also beyond the kept prefix). The marker is how a test
  harness proves its last test ran: a program that exits 0 before it (``sys.exit(0)``, ``os._exit(0)``,
  ``process.exit(0)``, ``std::exit(0)``, ``exit 0`` ...) is ``failed``. :mod:`eval.end_marker` prints it per language.
- ``failed``: a test said no: an assertion failed (Python/Java ``AssertionError``, Node ``assert``, C/C++
  ``assert()`` abort, Rust ``assert!``/``assert_eq!`` panic, Go ``--- FAIL``) or the program exited non-zero
  without an uncaught error (e.g. ``exit(1)``, Bash ``set -e``).
- ``runtime_error``: the program crashed: an uncaught non-assertion exception or panic, or death by a signal that the
  sandbox did not send (SIGSEGV, SIGFPE, SIGABRT without an assertion message, SIGXFSZ, ...).
- ``timeout``: wall-clock or CPU-time limit hit (the whole process tree is killed); also for the compile step.
- ``memory``: the program ran out of its memory limit (MemoryError, std::bad_alloc, OutOfMemoryError, ...).
- ``compile_error``: the compiler rejected the program (for Python: a top-level SyntaxError).
- ``killed``: stopped for another reason: output beyond ``kill_output_bytes``, or SIGKILL from someone else (the
  kernel's OOM killer, the program killing itself).
- ``sandbox_error``: the sandbox could not run the program at all (unknown language, missing toolchain, internal
  failure); ``error`` says why. Never produced by the program's own behaviour.
"""

from __future__ import annotations

import atexit
import enum
import json
import logging
import math
import os
import select
import signal
import struct
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from eval.sandbox import languages

log = logging.getLogger(__name__)
_ZYGOTE_SCRIPT = Path(__file__).with_name("_zygote.py")


class Status(str, enum.Enum):
    PASSED = "passed"
    FAILED = "failed"
    TIMEOUT = "timeout"
    MEMORY = "memory"
    COMPILE_ERROR = "compile_error"
    RUNTIME_ERROR = "runtime_error"
    KILLED = "killed"
    SANDBOX_ERROR = "sandbox_error"

    def __str__(self) -> str:
        return self.value


# The longest time limit accepted (a week; select() cannot wait much beyond ~10^9 s)
MAX_TIME_LIMIT_S = 7 * 24 * 3600.0


@dataclass(frozen=True)
class SandboxLimits:
    """Per-run limits. Memory is per process (RLIMIT_DATA, plus RLIMIT_AS where the runtime tolerates it)."""

    timeout_s: float = 10.0
    compile_timeout_s: float = 60.0
    memory_mb: int = 1024
    compile_memory_mb: int = 2048
    max_processes: int = 64
    max_file_size_mb: int = 64
    max_open_files: int = 256
    max_output_bytes: int = 65536  # kept per stream; the rest is counted and discarded
    kill_output_bytes: int = 16 << 20  # total output that gets the program killed (status ``killed``)
    workdir_mb: int = 256  # size of the fresh tmpfs work directory (and of /tmp)

    def __post_init__(self) -> None:
        # A zero or negative limit would silently mean "no limit" to setrlimit/select: refuse it. An infinite or
        # huge time limit overflows select()'s time_t deep inside a run: refuse it here, as one clear error.
        for name, value in asdict(self).items():
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"SandboxLimits.{name} must be positive and finite, got {value!r}")
        for name in ("timeout_s", "compile_timeout_s"):
            if getattr(self, name) > MAX_TIME_LIMIT_S:
                raise ValueError(
                    f"SandboxLimits.{name} must be at most {MAX_TIME_LIMIT_S:g} s, got {getattr(self, name)!r}"
                )


@dataclass(frozen=True)
class ExecutionRequest:
    language: str
    code: str
    stdin: str | None = None
    test_code: str | None = None
    limits: SandboxLimits | None = None
    end_marker: str | None = None  # passed only if the output contains it (see the module docstring)


@dataclass
class ExecutionResult:
    status: Status
    exit_code: int | None = None
    signal: int | None = None
    wall_time_s: float = 0.0
    cpu_time_s: float = 0.0
    stdout: str = ""
    stderr: str = ""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    phase: str = "run"  # the phase that decided the status: "compile" or "run"
    compile_time_s: float = 0.0
    language: str = ""
    isolation: str = ""  # "namespaces" or "rlimits"
    error: str | None = None  # sandbox-side explanation (sandbox_error, output kill, ...)
    marker_seen: bool | None = None  # None when the run was given no end marker

    @property
    def passed(self) -> bool:
        return self.status == Status.PASSED

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["status"] = self.status.value
        return d


# ----------------------------------------------------------------------------------------------------------------
# classification

_MEMORY_MARKERS = (
    "MemoryError",
    "std::bad_alloc",
    "java.lang.OutOfMemoryError",
    "memory allocation of",  # Rust's alloc error
    "JavaScript heap out of memory",
    "runtime: out of memory",
    "Cannot allocate memory",
    "cannot allocate memory",
    "out of memory",
)


def _last_exception_line(stderr: str) -> str:
    for line in reversed(stderr.strip().splitlines()):
        if line and not line.startswith((" ", "\t")):
            return line
    return ""


def classify(language: str, phase: dict) -> tuple[Status, str | None]:
    """Map a finished phase (exit code / signal / stderr) to a Status; see the module docstring."""
    stderr = phase["stderr"]
    if phase["timed_out"]:
        return Status.TIMEOUT, None
    if phase["output_killed"]:
        return Status.KILLED, "output limit exceeded"
    if phase.get("error"):
        return Status.SANDBOX_ERROR, phase["error"]
    code, sig = phase["exit_code"], phase["signal"]
    if code == 0:
        return Status.PASSED, None
    if sig in (signal.SIGXCPU,):
        return Status.TIMEOUT, "CPU time limit"
    if phase["name"] == "compile":
        if any(m in stderr for m in _MEMORY_MARKERS) or sig == signal.SIGKILL:
            return Status.MEMORY, "compiler ran out of memory"
        return Status.COMPILE_ERROR, None
    if any(m in stderr for m in _MEMORY_MARKERS):
        return Status.MEMORY, None
    if sig == signal.SIGKILL:
        return Status.KILLED, "killed by SIGKILL (not by the sandbox)"
    if language == "python":
        last = _last_exception_line(stderr)
        if "Traceback (most recent call last)" not in stderr and last.startswith(
            ("SyntaxError", "IndentationError", "TabError")
        ):
            return Status.COMPILE_ERROR, None
        if "Traceback (most recent call last)" in stderr:
            return (Status.FAILED if last.startswith("AssertionError") else Status.RUNTIME_ERROR), None
    if sig is not None:
        if sig == signal.SIGABRT and "Assertion" in stderr:
            return Status.FAILED, None
        return Status.RUNTIME_ERROR, f"killed by signal {signal.Signals(sig).name}"
    if language == "java" and "Exception in thread" in stderr:
        return (Status.FAILED if "java.lang.AssertionError" in stderr else Status.RUNTIME_ERROR), None
    if language in ("javascript", "typescript") and "\nNode.js v" in stderr:
        return (Status.FAILED if "AssertionError" in stderr else Status.RUNTIME_ERROR), None
    if language == "rust" and "panicked at" in stderr:
        return (Status.FAILED if "assertion" in stderr else Status.RUNTIME_ERROR), None
    if language == "go" and "panic:" in stderr:
        return Status.RUNTIME_ERROR, None
    return Status.FAILED, None


NO_END_MARKER = "exited with status 0 without printing the end marker: the tests did not run to the end"


def _to_result(
    language: str, resp: dict, limits: SandboxLimits, isolation: str, end_marker: str | None = None
) -> ExecutionResult:
    if resp.get("error"):
        return ExecutionResult(Status.SANDBOX_ERROR, language=language, isolation=isolation, error=resp["error"])
    phases = resp["phases"]
    last = phases[-1]
    status, note = classify(language, last)
    marker_seen = bool(last.get("marker_seen")) if end_marker else None
    if status == Status.PASSED and marker_seen is False:
        status, note = Status.FAILED, NO_END_MARKER
    compile_time = sum(p["wall_time_s"] for p in phases if p["name"] == "compile")
    return ExecutionResult(
        status=status,
        exit_code=last["exit_code"],
        signal=last["signal"],
        wall_time_s=round(last["wall_time_s"], 6),
        cpu_time_s=round(last["cpu_time_s"], 6),
        stdout=last["stdout"],
        stderr=last["stderr"],
        stdout_truncated=last["stdout_bytes"] > limits.max_output_bytes,
        stderr_truncated=last["stderr_bytes"] > limits.max_output_bytes,
        phase=last["name"],
        compile_time_s=round(compile_time, 6),
        language=language,
        isolation=isolation,
        error=note,
        marker_seen=marker_seen,
    )


# ----------------------------------------------------------------------------------------------------------------
# zygotes


class SandboxUnavailable(RuntimeError):
    pass


_warned: set[str] = set()


class _Zygote:
    """One worker: a zygote process plus the two pipes to talk to it. Not thread-safe; the pool hands it out."""

    def __init__(self, isolation: str = "auto") -> None:
        binds, symlinks = languages.mount_plan()
        to_z_r, to_z_w = os.pipe()
        from_z_r, from_z_w = os.pipe()
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
        self.proc = subprocess.Popen(
            [languages.toolchains()["python"]["python"], "-I", "-S", str(_ZYGOTE_SCRIPT), str(to_z_r), str(from_z_w)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            env=env,
            pass_fds=(to_z_r, from_z_w),
            close_fds=True,
            cwd="/",
            start_new_session=True,  # a Ctrl-C aimed at the caller must not hit the zygote mid-request
        )
        os.close(to_z_r)
        os.close(from_z_w)
        self.wfd, self.rfd = to_z_w, from_z_r
        self._send({"isolation": isolation, "binds": binds, "symlinks": symlinks})
        ready = self._recv(deadline=time.monotonic() + 60)
        if not ready or not ready.get("ready"):
            self.close()
            raise SandboxUnavailable((ready or {}).get("error") or "sandbox zygote failed to start")
        self.isolation: str = ready["isolation"]
        for w in ready.get("warnings", []):
            if w not in _warned:
                _warned.add(w)
                log.warning("sandbox: %s", w)

    def _send(self, obj: dict) -> None:
        body = json.dumps(obj).encode()
        data = struct.pack(">I", len(body)) + body
        while data:
            data = data[os.write(self.wfd, data) :]

    def _recv(self, deadline: float) -> dict | None:
        buf = bytearray()
        need = 4
        header_done = False
        while len(buf) < need:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.rfd], [], [], left)[0]:
                return None
            chunk = os.read(self.rfd, need - len(buf))
            if not chunk:
                return None
            buf += chunk
            if not header_done and len(buf) == 4:
                need = 4 + struct.unpack(">I", bytes(buf))[0]
                header_done = True
        return json.loads(bytes(buf[4:]))

    def request(self, req: dict, budget_s: float) -> dict | None:
        try:
            self._send(req)
        except OSError:
            return None
        return self._recv(deadline=time.monotonic() + budget_s)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        for fd in (self.wfd, self.rfd):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class _Pool:
    """Idle zygotes, reused across calls; grows to the number of concurrent callers."""

    def __init__(self) -> None:
        self._idle: list[_Zygote] = []
        self._lock = threading.Lock()
        self.isolation = os.environ.get("SEED_CODER_SANDBOX_ISOLATION", "auto")

    def acquire(self) -> _Zygote:
        with self._lock:
            while self._idle:
                z = self._idle.pop()
                if z.alive():
                    return z
                z.close()
        return _Zygote(self.isolation)

    def release(self, z: _Zygote) -> None:
        with self._lock:
            self._idle.append(z)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for z in idle:
            z.close()


_POOL = _Pool()
atexit.register(_POOL.close)


def isolation_level() -> str:
    """The isolation a run gets on this machine: ``namespaces`` or ``rlimits``."""
    z = _POOL.acquire()
    try:
        return z.isolation
    finally:
        _POOL.release(z)


def available_languages() -> list[str]:
    return languages.available_languages()


def _build_request(
    language: str, program: str, stdin: str | None, limits: SandboxLimits, end_marker: str | None = None
) -> dict:
    lp = languages.plan(language, program, limits.memory_mb, limits.compile_memory_mb)
    phases = []
    for ph in lp.phases:
        compile_ = ph.name == "compile"
        phases.append(
            {
                "name": ph.name,
                "argv": ph.argv,
                "env": ph.env,
                "python_inprocess": ph.python_inprocess,
                "timeout": limits.compile_timeout_s if compile_ else limits.timeout_s,
                "memory_mb": limits.compile_memory_mb if compile_ else limits.memory_mb,
                "limit_address_space": (not compile_) and languages.limit_address_space(language),
                "nproc": (max(limits.max_processes, 64) if compile_ else limits.max_processes) + 4,
                "fsize_mb": max(limits.max_file_size_mb, 64) if compile_ else limits.max_file_size_mb,
                "nofile": max(limits.max_open_files, 256) if compile_ else limits.max_open_files,
                "stdin": not compile_,
            }
        )
    return {
        "files": lp.files,
        "phases": phases,
        "stdin": stdin,
        "max_output_bytes": limits.max_output_bytes,
        "kill_output_bytes": limits.kill_output_bytes,
        "workdir_mb": limits.workdir_mb,
        "end_marker": end_marker,
    }


def run_program(
    language: str,
    code: str,
    stdin: str | None = None,
    test_code: str | None = None,
    limits: SandboxLimits | None = None,
    end_marker: str | None = None,
) -> ExecutionResult:
    """Run one program in the sandbox. Never raises for bad input: problems come back as ``sandbox_error``.

    With ``end_marker`` the run passes only if it exits 0 *and* its output contains the marker (see the module
    docstring); the program itself must print it after its last test.
    """
    limits = limits or SandboxLimits()
    lang = languages.normalize_language(language)
    if lang is None:
        return ExecutionResult(
            Status.SANDBOX_ERROR,
            language=str(language),
            error=f"unknown language {language!r}; known: {', '.join(languages.LANGUAGES)}",
        )
    if lang not in languages.toolchains():
        return ExecutionResult(
            Status.SANDBOX_ERROR, language=lang, error=f"no {lang} toolchain installed on this machine"
        )
    if not isinstance(code, str) or (test_code is not None and not isinstance(test_code, str)):
        return ExecutionResult(Status.SANDBOX_ERROR, language=lang, error="code and test_code must be strings")
    if end_marker is not None and (not isinstance(end_marker, str) or len(end_marker) < 8):
        return ExecutionResult(Status.SANDBOX_ERROR, language=lang, error="end_marker must be a string of >= 8 chars")
    program = code if test_code is None else code + "\n" + test_code
    try:
        req = _build_request(lang, program, stdin, limits, end_marker)
    except (OSError, ValueError) as exc:
        return ExecutionResult(Status.SANDBOX_ERROR, language=lang, error=str(exc))
    budget = limits.timeout_s + limits.compile_timeout_s + 30.0
    for _attempt in range(2):
        try:
            z = _POOL.acquire()
        except (SandboxUnavailable, OSError) as exc:
            return ExecutionResult(Status.SANDBOX_ERROR, language=lang, error=str(exc))
        resp = z.request(req, budget)
        if resp is not None:
            _POOL.release(z)
            return _to_result(lang, resp, limits, z.isolation, end_marker)
        died = not z.alive()
        z.proc.kill()  # hung or dead: retire it
        z.close()
        if not died:
            break
        log.warning("sandbox: a worker died unexpectedly; retrying the run on a fresh one")
    return ExecutionResult(Status.SANDBOX_ERROR, language=lang, error="sandbox worker stopped responding")


def run_batch(requests: list[ExecutionRequest], workers: int | None = None) -> list[ExecutionResult]:
    """Run many programs in parallel (one zygote per worker); results come back in request order."""
    if not requests:
        return []
    workers = max(1, min(workers or os.cpu_count() or 1, len(requests)))

    def one(r: ExecutionRequest) -> ExecutionResult:
        return run_program(
            r.language, r.code, stdin=r.stdin, test_code=r.test_code, limits=r.limits, end_marker=r.end_marker
        )

    if workers == 1:
        return [one(r) for r in requests]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sandbox") as ex:
        return list(ex.map(one, requests))


__all__ = [
    "ExecutionRequest",
    "ExecutionResult",
    "SandboxLimits",
    "Status",
    "available_languages",
    "isolation_level",
    "run_batch",
    "run_program",
]
