"""One request inside the sandbox: the supervisor (C2) runs each phase's program (C3) and watches it.

Per phase: fork C3 with rlimits, no privileges and a scrubbed environment (or run Python in the forked interpreter),
feed its stdin, keep a prefix of its output and count the rest, look for the end marker, enforce the wall-clock and
output limits, and report exit status, signal, times and output. Standard library only (see ``_zygote``).
"""

from __future__ import annotations

import gc
import os
import resource
import select
import signal
import sys
import time
import traceback
from typing import Any

from _linux import (
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    PR_SET_CHILD_SUBREAPER,
    PR_SET_DUMPABLE,
    PR_SET_NO_NEW_PRIVS,
    PR_SET_PDEATHSIG,
    drop_all_capabilities,
    drop_to,
    kill_uid,
    mount,
    prctl,
)


def _subst(value: str, work: str, tmp: str) -> str:
    return value.replace("{work}", work).replace("{tmp}", tmp)


def supervise(req: dict, st: Any, work: str, tmp: str) -> dict:
    """C2: PID 1 of the request's namespace (or a subreaper in fallback mode); runs the phases in order.

    Dies with the zygote (PDEATHSIG), and then the kernel kills everything left in the PID namespace.
    """
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    prctl(PR_SET_DUMPABLE, 0)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    proc_ok = True
    if st.isolation == "namespaces":
        try:
            mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        except OSError:
            proc_ok = False  # e.g. a container that masks parts of /proc; programs rarely need it
    else:
        prctl(PR_SET_CHILD_SUBREAPER, 1)
    phases = []
    stdin_data = req.get("stdin")
    for ph in req["phases"]:
        ph = dict(ph)
        ph["argv"] = [_subst(a, work, tmp) for a in ph["argv"]]
        ph["env"] = {k: _subst(v, work, tmp) for k, v in ph["env"].items()}
        res = run_phase(ph, st, work, stdin_data if ph.get("stdin") else None, req)
        phases.append(res)
        if res["exit_code"] != 0 or res["timed_out"] or res["output_killed"] or res["error"]:
            break
    return {"phases": phases, "proc": proc_ok}


def _kill_all(st: Any, pid: int) -> None:
    if st.isolation == "namespaces":
        try:
            os.kill(-1, signal.SIGKILL)  # as PID 1: every other process in the namespace
        except ProcessLookupError:
            pass
    else:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
        kill_uid(st.sandbox_uid)  # as root: also what escaped the process group


class _MarkerScan:
    """Watches both output streams for the end marker, including the bytes beyond the kept prefix."""

    def __init__(self, marker: str | None) -> None:
        self.needle = marker.encode() if marker else b""
        self.seen = False
        self.tails: dict[int, bytes] = {}

    def feed(self, fd: int, chunk: bytes) -> None:
        if not self.needle or self.seen:
            return
        window = self.tails.get(fd, b"") + chunk
        if self.needle in window:
            self.seen = True
        self.tails[fd] = window[-(len(self.needle) - 1) :] if len(self.needle) > 1 else b""


class _Streams:
    """The program's stdout/stderr (a prefix of each kept, all counted, all scanned for the end marker) and the stdin
    still to be written to it."""

    def __init__(self, out_r: int, err_r: int, in_w: int, stdin_data: str | None, req: dict) -> None:
        self.out_r, self.err_r, self.in_w = out_r, err_r, in_w
        self.bufs = {out_r: bytearray(), err_r: bytearray()}
        self.totals = {out_r: 0, err_r: 0}
        self.open = [out_r, err_r]
        self.max_keep = int(req.get("max_output_bytes", 65536))
        self.marker = _MarkerScan(req.get("end_marker"))
        self.pending = stdin_data.encode() if stdin_data is not None else b""
        if in_w >= 0:
            os.set_blocking(in_w, False)
            if not self.pending:
                self.close_stdin()

    def total(self) -> int:
        return self.totals[self.out_r] + self.totals[self.err_r]

    def read(self, fd: int) -> None:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            self.open.remove(fd)
            return
        self.totals[fd] += len(chunk)
        self.marker.feed(fd, chunk)
        room = self.max_keep - len(self.bufs[fd])
        if room > 0:
            self.bufs[fd] += chunk[:room]

    def write_stdin(self) -> None:
        try:
            self.pending = self.pending[os.write(self.in_w, self.pending[:65536]) :]
        except BlockingIOError:
            pass
        except OSError:  # the program closed stdin or exited
            self.pending = b""
        if not self.pending:
            self.close_stdin()

    def close_stdin(self) -> None:
        if self.in_w >= 0:
            os.close(self.in_w)
            self.in_w = -1

    def close(self) -> None:
        for fd in set(self.open + [self.out_r, self.err_r]):
            try:
                os.close(fd)
            except OSError:
                pass
        self.close_stdin()

    def text(self, fd: int) -> str:
        return self.bufs[fd].decode("utf-8", errors="replace")


def _spawn(ph: dict, st: Any, work: str, stdin_data: str | None, req: dict) -> tuple[int, int, _Streams, int]:
    """Fork C3 with its pipes; returns its pid, a pidfd (or -1), the streams and the exec-failure report pipe."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    if stdin_data is not None:
        in_r, in_w = os.pipe()
    else:
        in_r, in_w = os.open(os.devnull, os.O_RDONLY), -1
    report_r, report_w = os.pipe()  # C3 reports an exec failure here (close-on-exec)
    os.set_inheritable(report_w, False)
    pid = os.fork()
    if pid == 0:
        _child(ph, st, work, in_r, out_w, err_w, report_w)  # never returns
    for fd in (in_r, out_w, err_w, report_w):
        os.close(fd)
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = -1
    return pid, pidfd, _Streams(out_r, err_r, in_w, stdin_data, req), report_r


def _kill_program(st: Any, pid: int) -> None:
    _kill_all(st, pid)
    os.kill(pid, signal.SIGKILL)


def _watch(ph: dict, st: Any, pid: int, pidfd: int, streams: _Streams, t0: float, kill_at: int) -> dict:
    """Pump the program's pipes until it has exited and they are drained; enforce the time and output limits."""
    deadline = t0 + float(ph["timeout"])
    run = {"status": None, "wall": 0.0, "cpu": 0.0, "timed_out": False, "output_killed": False}
    while True:
        if run["status"] is None:
            got, status, usage = os.wait4(pid, os.WNOHANG)
            if got == pid:
                run.update(status=status, wall=time.monotonic() - t0)
                run["cpu"] += usage.ru_utime + usage.ru_stime
                _kill_all(st, pid)  # background children die with the program
                streams.close_stdin()
        running = run["status"] is None
        if not running and not streams.open:
            return run
        now = time.monotonic()
        if running and now >= deadline:
            run["timed_out"] = True
            _kill_program(st, pid)
            continue
        rlist = list(streams.open) + ([pidfd] if running and pidfd >= 0 else [])
        wlist = [streams.in_w] if streams.in_w >= 0 else []
        wait = max(0.0, deadline - now) if running else 1.0
        if pidfd < 0 and running:
            wait = min(wait, 0.01)
        try:
            readable, writable, _ = select.select(rlist, wlist, [], wait)
        except InterruptedError:
            continue
        if not running and (not readable or time.monotonic() - t0 - run["wall"] > 2.0):
            # The program is gone but something that escaped the kill (fallback mode only) still holds a pipe.
            return run
        for fd in readable:
            if fd == pidfd:
                continue
            streams.read(fd)
            if streams.total() > kill_at and not run["output_killed"] and running:
                run["output_killed"] = True
                _kill_program(st, pid)
        if writable:
            streams.write_stdin()


def run_phase(ph: dict, st: Any, work: str, stdin_data: str | None, req: dict) -> dict:
    """Run one phase's program to its end (or its limits) and describe what happened."""
    t0 = time.monotonic()
    pid, pidfd, streams, report_r = _spawn(ph, st, work, stdin_data, req)
    run = _watch(ph, st, pid, pidfd, streams, t0, int(req.get("kill_output_bytes", 16 << 20)))
    streams.close()
    if pidfd >= 0:
        os.close(pidfd)
    run["cpu"] += _reap_all(blocking=st.isolation == "namespaces")
    os.set_blocking(report_r, False)
    try:
        exec_error = os.read(report_r, 4096).decode(errors="replace")
    except BlockingIOError:
        exec_error = ""
    os.close(report_r)
    status = run["status"]
    exit_code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
    sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
    return {
        "name": ph["name"],
        "exit_code": exit_code,
        "signal": sig,
        "timed_out": run["timed_out"],
        "output_killed": run["output_killed"],
        "wall_time_s": run["wall"] or time.monotonic() - t0,
        "cpu_time_s": run["cpu"],
        "stdout": streams.text(streams.out_r),
        "stderr": streams.text(streams.err_r),
        "stdout_bytes": streams.totals[streams.out_r],
        "stderr_bytes": streams.totals[streams.err_r],
        "error": exec_error or None,
        "marker_seen": streams.marker.seen,
    }


def _reap_all(blocking: bool) -> float:
    """Reap the program's tree. Without namespaces, something that escaped the kill may never exit: give up."""
    cpu = 0.0
    give_up = time.monotonic() + 0.5
    while True:
        try:
            pid, _, ru = os.wait4(-1, 0 if blocking else os.WNOHANG)
        except ChildProcessError:
            return cpu
        except InterruptedError:
            continue
        if pid == 0:
            if time.monotonic() > give_up:
                return cpu
            time.sleep(0.005)
            continue
        cpu += ru.ru_utime + ru.ru_stime


def _set_rlimits(ph: dict) -> None:
    mb = 1 << 20
    cpu = int(float(ph["timeout"])) + 1
    limits = [
        (resource.RLIMIT_CPU, cpu, cpu + 1),
        (resource.RLIMIT_FSIZE, int(ph["fsize_mb"]) * mb, int(ph["fsize_mb"]) * mb),
        (resource.RLIMIT_NOFILE, int(ph["nofile"]), int(ph["nofile"])),
        (resource.RLIMIT_NPROC, int(ph["nproc"]), int(ph["nproc"])),
        (resource.RLIMIT_CORE, 0, 0),
        (resource.RLIMIT_DATA, int(ph["memory_mb"]) * mb, int(ph["memory_mb"]) * mb),
    ]
    if ph.get("limit_address_space"):
        limits.append((resource.RLIMIT_AS, int(ph["memory_mb"]) * mb, int(ph["memory_mb"]) * mb))
    for which, soft, hard in limits:
        try:
            resource.setrlimit(which, (soft, hard))
        except (ValueError, OSError):
            cur_soft, cur_hard = resource.getrlimit(which)
            if cur_hard != resource.RLIM_INFINITY:
                resource.setrlimit(which, (min(soft, cur_hard), cur_hard))


def _child(ph: dict, st: Any, work: str, in_r: int, out_w: int, err_w: int, report_fd: int) -> None:
    """C3: become the untrusted program. Any failure is reported on ``report_fd`` and ends with exit 127."""
    try:
        os.setsid()
        os.dup2(in_r, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        os.dup2(report_fd, 3)
        os.set_inheritable(3, False)
        os.closerange(4, 1 << 16)
        report = 3
        os.chdir(work)
        if ph.get("python_inprocess"):
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        else:
            for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT):
                signal.signal(sig, signal.SIG_DFL)
        _set_rlimits(ph)
        prctl(PR_SET_NO_NEW_PRIVS, 1)
        if st.isolation == "namespaces" and st.flavor == "userns":
            drop_all_capabilities()
        elif st.sandbox_uid is not None:
            drop_to(st.sandbox_uid)
        env = ph["env"]
        if ph.get("python_inprocess"):
            os.close(report)
            gc.enable()
            _python_inprocess(ph["argv"][1], env)
        os.execve(ph["argv"][0], ph["argv"], env)
    except BaseException as exc:
        try:
            os.write(3, f"sandbox: cannot start {ph['argv'][0]!r}: {exc}".encode())
        except OSError:
            pass
    os._exit(127)


def _python_inprocess(path: str, env: dict) -> None:
    """Run a Python file in this (forked) interpreter the way ``python -I path`` would, then exit."""
    import atexit
    import builtins
    import types

    os.environ.clear()
    os.environ.update(env)
    code = 0
    try:
        with open(path, "rb") as f:
            source = f.read()
        module = types.ModuleType("__main__")
        module.__file__ = path
        module.__builtins__ = builtins
        sys.modules["__main__"] = module
        sys.argv = [path]
        compiled = compile(source, path, "exec", dont_inherit=True)
        exec(compiled, module.__dict__)
    except SystemExit as exc:
        code = _exit_code(exc)
    except BaseException as exc:
        code = 1
        _print_exception(exc)
    try:
        if "threading" in sys.modules:  # join non-daemon threads, as interpreter shutdown would
            sys.modules["threading"]._shutdown()  # type: ignore[attr-defined]
        atexit._run_exitfuncs()
    except SystemExit as exc:
        code = _exit_code(exc)
    except BaseException as exc:
        _print_exception(exc)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass
    os._exit(code)


def _print_exception(exc: BaseException) -> None:
    tb = exc.__traceback__.tb_next if exc.__traceback__ is not None else None  # hide our exec frame
    try:
        traceback.print_exception(type(exc), exc, tb)
    except BaseException:
        os.write(2, f"{type(exc).__name__}\n".encode())


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code & 0xFF
    try:
        print(exc.code, file=sys.stderr)
    except BaseException:
        pass
    return 1
