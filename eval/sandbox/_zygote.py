"""Sandbox zygote: a long-lived, stdlib-only server that runs untrusted programs one request at a time.

Started by ``eval.sandbox`` as ``python -I -S _zygote.py RFD WFD`` with a scrubbed environment. It sets up the
expensive isolation once (namespaces, a read-only minimal root, chroot) and then forks per request, so one run costs
a few forks instead of a namespace build plus an interpreter start. Python programs run in the forked interpreter
itself (no exec), which is where most of the speed comes from.

Process tree (namespace mode)::

    zygote (PID 1 of its own PID namespace; chrooted; own mount/net/ipc/uts [and user] namespaces; trusted)
      └─ C2: per request: new mount + PID namespace, fresh tmpfs /work, /tmp, /dev/shm (set up by the zygote,
           which then returns to its own namespaces with setns); PID 1 there; mounts /proc; supervises each
           phase (timeouts, output caps)
           └─ C3: the untrusted program: rlimits, no privileges, closed fds, scrubbed env

When C2 exits the kernel kills every process left in the PID namespace, so nothing outlives a request. This file
must only import the standard library: it runs with ``-I -S`` and, once chrooted, may not find anything else.
"""

from __future__ import annotations

import ctypes
import errno
import gc
import json
import os
import resource
import select
import shutil
import signal
import stat
import struct
import sys
import tempfile
import time
import traceback

# Modules that untrusted Python commonly imports; loading them once here makes every forked run cheaper.
# Not `threading`: once imported, every fork runs its at-fork hooks, which doubled the cost of a request.
PREIMPORT = (
    "typing collections collections.abc itertools functools math cmath re string heapq bisect hashlib random "
    "fractions decimal statistics copy operator json types dataclasses enum io linecache traceback site numbers "
    "array datetime"
)

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_NOATIME, MS_NODIRATIME, MS_BIND = 32, 1024, 2048, 4096
MS_REC, MS_PRIVATE, MS_RELATIME = 16384, 1 << 18, 1 << 21

PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP = 1, 4, 24
PR_SET_SECUREBITS, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 28, 36, 38
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
# NOROOT, NO_SETUID_FIXUP, NO_CAP_AMBIENT_RAISE, each locked, plus KEEP_CAPS_LOCKED (with KEEP_CAPS off).
SECUREBITS_LOCKDOWN = 0x01 | 0x02 | 0x04 | 0x08 | 0x20 | 0x40 | 0x80

UID_BASE = 2_000_000  # sandbox uids are UID_BASE + zygote pid: unique per live zygote, far from real users

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def mount(src: str | None, dst: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = lambda s: s.encode() if s is not None else None  # noqa: E731
    _check(_libc.mount(enc(src), enc(dst), enc(fstype), flags, enc(data)), f"mount {dst}")


def prctl(option: int, arg: int = 0) -> int:
    return _libc.prctl(option, arg, 0, 0, 0)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def drop_all_capabilities() -> None:
    """Make an in-namespace root powerless: empty bounding/ambient sets, no root magic on exec, zero caps."""
    prctl(PR_SET_SECUREBITS, SECUREBITS_LOCKDOWN)
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    for cap in range(64):
        if prctl(PR_CAPBSET_DROP, cap) != 0 and ctypes.get_errno() == errno.EINVAL:
            break
    header = _CapHeader(0x20080522, 0)
    data = (_CapData * 2)()
    _check(_libc.capset(ctypes.byref(header), data), "capset")


# ----------------------------------------------------------------------------------------------------------------
# framing


def recv(fd: int) -> dict | None:
    head = _read_exact(fd, 4)
    if head is None:
        return None
    body = _read_exact(fd, struct.unpack(">I", head)[0])
    return None if body is None else json.loads(body)


def send(fd: int, obj: dict) -> None:
    body = json.dumps(obj).encode()
    data = struct.pack(">I", len(body)) + body
    while data:
        data = data[os.write(fd, data) :]


def _read_exact(fd: int, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


# ----------------------------------------------------------------------------------------------------------------
# one-time setup


class State:
    """What the zygote learned at start-up and every request needs."""

    def __init__(self) -> None:
        self.isolation = "rlimits"  # or "namespaces"
        self.flavor = ""  # "root" (real root, no user namespace) or "userns"
        self.sandbox_uid: int | None = None  # uid that C3 switches to (root flavours / root fallback)
        self.warnings: list[str] = []
        self.proc_ok = True
        self.fallback_base = ""
        self.unreaped: list[int] = []  # finished requests' supervisors, reaped lazily
        self.base_mnt_fd = -1  # the zygote's own mount and PID namespaces, to return to after each request
        self.base_pid_fd = -1
        self.root_in_base = ""  # where the sandbox root is mounted, as seen before the chroot


def _probe(fn) -> bool:
    """Run ``fn`` in a throwaway child so that an irreversible attempt (setuid, unshare) cannot taint us."""
    pid = os.fork()
    if pid == 0:
        try:
            fn()
            os._exit(0)
        except BaseException:
            os._exit(1)
    return os.waitpid(pid, 0)[1] == 0


def _write_file(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _enter_userns(uid: int, gid: int) -> None:
    unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS)
    _write_file("/proc/self/setgroups", "deny")
    _write_file("/proc/self/uid_map", f"0 {uid} 1")
    _write_file("/proc/self/gid_map", f"0 {gid} 1")


def _try_userns(uid: int | None) -> None:
    if uid is not None:
        _drop_to(uid)
        prctl(PR_SET_DUMPABLE, 1)  # setuid made us non-dumpable, which makes /proc/self/*_map root-owned
    _enter_userns(os.getuid(), os.getgid())


def _drop_to(uid: int) -> None:
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)


def setup(cfg: dict) -> State:
    st = State()
    mode = cfg.get("isolation", "auto")
    is_root = os.geteuid() == 0
    if is_root:
        st.sandbox_uid = UID_BASE + os.getpid()
    if mode != "rlimits":
        flavor = ""
        root_ok = mode != "userns" and is_root
        if root_ok and _probe(lambda: unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS)):
            flavor = "root"
        elif _probe(lambda: _try_userns(st.sandbox_uid)):
            flavor = "userns"
        if flavor:
            try:
                _build_namespaces(cfg, st, flavor)
                st.isolation, st.flavor = "namespaces", flavor
            except OSError as exc:  # pragma: no cover - depends on the kernel
                # Half-built namespaces are unusable; tell the caller to start a fresh rlimits-only zygote.
                raise SystemExit(f"sandbox: namespace setup failed: {exc}") from exc
        else:
            st.warnings.append(
                "namespaces unavailable (no user namespaces and no CAP_SYS_ADMIN): running untrusted code with "
                "rlimits only; there is no filesystem or network isolation"
            )
    if st.isolation == "rlimits":
        st.fallback_base = tempfile.mkdtemp(prefix="seed-sandbox-")
        if is_root:
            os.chmod(st.fallback_base, 0o711)
    return st


def _build_namespaces(cfg: dict, st: State, flavor: str) -> None:
    """Unshare and build the read-only minimal root, then chroot into it."""
    if flavor == "root":
        unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS)
    else:
        _try_userns(st.sandbox_uid)
        st.sandbox_uid = None  # C3 stays the namespace's root and drops every capability instead
    # Sources are looked up only now: a bind source must live in the current mount namespace. A uid that cannot
    # traverse to a source (e.g. under root's home directory after dropping from root in a container) loses it,
    # with a warning.
    binds = []
    for src, dst in cfg["binds"]:
        try:
            binds.append((src, dst, stat.S_ISDIR(os.stat(src).st_mode)))
        except OSError as exc:
            st.warnings.append(f"cannot expose {src} inside the sandbox: {exc.strerror}")
    # No PR_SET_PDEATHSIG here: it fires when the *thread* that spawned us exits (run_batch's pool threads do);
    # the zygote exits instead when its control pipe reaches EOF.
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    try:
        _libc.sethostname(b"sandbox", 7)
    except Exception:
        pass
    root = "/tmp"  # over-mounted privately: invisible outside this mount namespace, nothing left behind
    mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=16m,mode=0755")
    for src, dst, is_dir in binds:
        target = root + dst
        _mkdir_p(os.path.dirname(target))
        if is_dir:
            os.makedirs(target, exist_ok=True)
        else:
            open(target, "a").close()
        mount(src, target, None, MS_BIND | MS_REC)
        _remount_readonly(target)
    for link_target, link in cfg["symlinks"]:
        _mkdir_p(os.path.dirname(root + link))
        os.symlink(link_target, root + link)
    os.makedirs(root + "/dev", exist_ok=True)
    for dev in ("null", "zero", "full", "random", "urandom"):
        if os.path.exists(f"/dev/{dev}"):
            open(f"{root}/dev/{dev}", "a").close()
            mount(f"/dev/{dev}", f"{root}/dev/{dev}", None, MS_BIND)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1")):
        os.symlink(target, f"{root}/dev/{name}")
    os.symlink("/proc/self/fd/2", f"{root}/dev/stderr")
    for d in ("/dev/shm", "/proc", "/work", "/tmp", "/etc"):
        os.makedirs(root + d, exist_ok=True)
    os.chmod(root + "/tmp", 0o1777)
    mount(None, root, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, "size=16m,mode=0755")
    # The zygote continues as PID 1 of a PID namespace of its own: per-request PID namespaces are then nested in
    # one that this (possibly unprivileged) user namespace owns, which is what `setns` back to it requires.
    unshare(CLONE_NEWPID)
    child = os.fork()
    if child:  # the original process only mirrors the zygote's fate, so the caller's Popen sees it
        os.closerange(0, 1 << 16)
        while True:
            try:
                _, status = os.waitpid(child, 0)
                break
            except InterruptedError:
                continue
        os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    st.base_mnt_fd = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    st.base_pid_fd = os.open("/proc/self/ns/pid_for_children", os.O_RDONLY | os.O_CLOEXEC)
    st.root_in_base = root
    os.chroot(root)
    os.chdir("/")


def _mkdir_p(path: str) -> None:
    os.makedirs(path, mode=0o755, exist_ok=True)


def _remount_readonly(target: str) -> None:
    """Bind mounts inherit the source's locked flags (nosuid, noexec, atime); a remount must repeat them."""
    flags = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV
    f_flag = os.statvfs(target).f_flag
    for st_bit, ms_bit in ((8, MS_NOEXEC), (1024, MS_NOATIME), (2048, MS_NODIRATIME), (4096, MS_RELATIME)):
        if f_flag & st_bit:
            flags |= ms_bit
    mount(None, target, None, flags)


# ----------------------------------------------------------------------------------------------------------------
# per request


def handle(req: dict, st: State) -> dict:
    """Run one request: fresh namespaces and directories, then a forked PID-1 supervisor (C2) that replies.

    With namespaces the zygote itself steps into a new mount namespace (and sets a new PID namespace for its next
    child), prepares the directories, forks C2 and steps back with ``setns``: one fork per request instead of two.
    The reply goes out as soon as C2's result frame is complete, so tearing down the finished request's namespaces
    overlaps with the caller's next request. The fallback mode instead waits and then cleans up, because its
    clean-up kills every process of the shared sandbox uid.
    """
    _reap_finished(st)
    r, w = os.pipe()
    sys.stderr.flush()
    namespaces = st.isolation == "namespaces"
    work = ""
    try:
        if namespaces:
            unshare(CLONE_NEWNS | CLONE_NEWPID)
            try:
                work, tmp = _prepare_namespace_dirs(req, st)
                pid = _fork_supervisor(req, st, work, tmp, r, w)
            finally:
                _return_to_base_namespaces(st)
        else:
            work = tempfile.mkdtemp(dir=st.fallback_base)
            tmp = os.path.join(work, ".tmp")
            os.mkdir(tmp)
            if st.sandbox_uid is not None:
                os.chown(work, st.sandbox_uid, st.sandbox_uid)
                os.chown(tmp, st.sandbox_uid, st.sandbox_uid)
            _write_files(req, work, st.sandbox_uid)
            pid = _fork_supervisor(req, st, work, tmp, r, w)
    except OSError as exc:
        os.close(r)
        os.close(w)
        if work and not namespaces:
            shutil.rmtree(work, ignore_errors=True)
        return {"error": f"sandbox could not prepare the run: {exc}"}
    os.close(w)
    try:
        resp = recv(r)
    except (OSError, ValueError):
        resp = None
    finally:
        os.close(r)
    if resp is None or not namespaces:
        _, status = os.waitpid(pid, 0)
        if not namespaces:
            _kill_uid(st.sandbox_uid)
            shutil.rmtree(work, ignore_errors=True)
        if resp is None:
            return {"error": f"sandbox supervisor died (wait status {status})"}
    else:
        st.unreaped.append(pid)
    return resp


def _prepare_namespace_dirs(req: dict, st: State) -> tuple[str, str]:
    uid = st.sandbox_uid
    size = int(req.get("workdir_mb", 256))
    owner = f",uid={uid},gid={uid}" if uid is not None else ""
    mount("tmpfs", "/work", "tmpfs", MS_NOSUID | MS_NODEV, f"size={size}m,nr_inodes=16k,mode=0755{owner}")
    mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={size}m,nr_inodes=16k,mode=1777")
    mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,nr_inodes=1k,mode=1777")
    _write_files(req, "/work", uid)
    return "/work", "/tmp"


def _write_files(req: dict, work: str, uid: int | None) -> None:
    for name, content in req["files"].items():
        path = os.path.join(work, os.path.basename(name))
        with open(path, "w", encoding="utf-8") as f:
            f.write(content)
        if uid is not None:
            os.chown(path, uid, uid)


def _return_to_base_namespaces(st: State) -> None:
    """Undo the per-request unshare: back to the zygote's mount namespace (and chroot), and its PID namespace."""
    _check(_libc.setns(st.base_mnt_fd, CLONE_NEWNS), "setns(mnt)")
    os.chroot(st.root_in_base)  # entering a mount namespace resets the root to that namespace's root
    os.chdir("/")
    _check(_libc.setns(st.base_pid_fd, CLONE_NEWPID), "setns(pid)")


def _fork_supervisor(req: dict, st: State, work: str, tmp: str, r: int, w: int) -> int:
    pid = os.fork()
    if pid == 0:  # C2
        code = 0
        try:
            os.close(r)
            out = _supervise(req, st, work, tmp)
        except BaseException:
            out = {"error": "sandbox supervisor error: " + traceback.format_exc(limit=4)}
            code = 1
        _send_frame(w, out)
        os._exit(code)
    return pid


def _reap_finished(st: State) -> None:
    for pid in list(st.unreaped):
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            st.unreaped.remove(pid)


def _send_frame(fd: int, obj: dict) -> None:
    try:
        send(fd, obj)
    except OSError:
        pass


def _safe_write(fd: int, data: bytes) -> None:
    try:
        while data:
            data = data[os.write(fd, data) :]
    except OSError:
        pass


def _kill_uid(uid: int | None) -> None:
    """Fallback mode as root: kill every process of the sandbox uid (catches children that escaped the group)."""
    if uid is None:
        return
    pid = os.fork()
    if pid == 0:
        try:
            _drop_to(uid)
            os.kill(-1, signal.SIGKILL)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def _subst(value: str, work: str, tmp: str) -> str:
    return value.replace("{work}", work).replace("{tmp}", tmp)


def _supervise(req: dict, st: State, work: str, tmp: str) -> dict:
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
        res = _run_phase(ph, st, work, stdin_data if ph.get("stdin") else None, req)
        phases.append(res)
        if res["exit_code"] != 0 or res["timed_out"] or res["output_killed"] or res["error"]:
            break
    return {"phases": phases, "proc": proc_ok}


def _kill_all(st: State, pid: int) -> None:
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
        _kill_uid(st.sandbox_uid)  # as root: also what escaped the process group


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


def _run_phase(ph: dict, st: State, work: str, stdin_data: str | None, req: dict) -> dict:
    max_keep = int(req.get("max_output_bytes", 65536))
    kill_at = int(req.get("kill_output_bytes", 16 << 20))
    marker = _MarkerScan(req.get("end_marker"))
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    if stdin_data is not None:
        in_r, in_w = os.pipe()
    else:
        in_r, in_w = os.open(os.devnull, os.O_RDONLY), -1
    err_r2, err_w2 = os.pipe()  # C3 reports an exec failure here (close-on-exec)
    os.set_inheritable(err_w2, False)
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:
        _child(ph, st, work, in_r, out_w, err_w, err_w2)  # never returns
    for fd in (in_r, out_w, err_w, err_w2):
        os.close(fd)
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = -1
    bufs = {out_r: bytearray(), err_r: bytearray()}
    totals = {out_r: 0, err_r: 0}
    open_fds = [out_r, err_r]
    pending = stdin_data.encode() if stdin_data is not None else b""
    if in_w >= 0:
        os.set_blocking(in_w, False)
        if not pending:
            os.close(in_w)
            in_w = -1
    deadline = t0 + float(ph["timeout"])
    timed_out = output_killed = False
    status = None
    rusage_cpu = 0.0
    wall = 0.0
    while True:
        if status is None:
            got, st_, ru = os.wait4(pid, os.WNOHANG)
            if got == pid:
                status, wall = st_, time.monotonic() - t0
                rusage_cpu += ru.ru_utime + ru.ru_stime
                _kill_all(st, pid)  # background children die with the program
                if in_w >= 0:
                    os.close(in_w)
                    in_w = -1
        if status is not None and not open_fds:
            break
        now = time.monotonic()
        if status is None and now >= deadline:
            timed_out = True
            _kill_all(st, pid)
            os.kill(pid, signal.SIGKILL)
            continue
        rlist = list(open_fds)
        if status is None and pidfd >= 0:
            rlist.append(pidfd)
        wlist = [in_w] if in_w >= 0 else []
        wait = max(0.0, deadline - now) if status is None else 1.0
        if pidfd < 0 and status is None:
            wait = min(wait, 0.01)
        try:
            readable, writable, _ = select.select(rlist, wlist, [], wait)
        except InterruptedError:
            continue
        if status is not None and (not readable or time.monotonic() - t0 - wall > 2.0):
            # The program is gone but something that escaped the kill (fallback mode only) still holds a pipe.
            break
        for fd in readable:
            if fd == pidfd:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                open_fds.remove(fd)
                continue
            totals[fd] += len(chunk)
            marker.feed(fd, chunk)
            room = max_keep - len(bufs[fd])
            if room > 0:
                bufs[fd] += chunk[:room]
            if totals[out_r] + totals[err_r] > kill_at and not output_killed and status is None:
                output_killed = True
                _kill_all(st, pid)
                os.kill(pid, signal.SIGKILL)
        if writable:
            try:
                pending = pending[os.write(in_w, pending[:65536]) :]
            except BlockingIOError:
                pass
            except OSError:  # the program closed stdin or exited
                pending = b""
            if not pending:
                os.close(in_w)
                in_w = -1
    for fd in open_fds + [out_r, err_r]:
        try:
            os.close(fd)
        except OSError:
            pass
    if pidfd >= 0:
        os.close(pidfd)
    if in_w >= 0:
        os.close(in_w)
    rusage_cpu += _reap_all(blocking=st.isolation == "namespaces")
    os.set_blocking(err_r2, False)
    try:
        exec_error = os.read(err_r2, 4096).decode(errors="replace")
    except BlockingIOError:
        exec_error = ""
    os.close(err_r2)
    exit_code = sig = None
    if os.WIFEXITED(status):
        exit_code = os.WEXITSTATUS(status)
    elif os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
    return {
        "name": ph["name"],
        "exit_code": exit_code,
        "signal": sig,
        "timed_out": timed_out,
        "output_killed": output_killed,
        "wall_time_s": wall or time.monotonic() - t0,
        "cpu_time_s": rusage_cpu,
        "stdout": bufs[out_r].decode("utf-8", errors="replace"),
        "stderr": bufs[err_r].decode("utf-8", errors="replace"),
        "stdout_bytes": totals[out_r],
        "stderr_bytes": totals[err_r],
        "error": exec_error or None,
        "marker_seen": marker.seen,
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


def _child(ph: dict, st: State, work: str, in_r: int, out_w: int, err_w: int, report_fd: int) -> None:
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
            _drop_to(st.sandbox_uid)
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


def main() -> None:
    rfd, wfd = int(sys.argv[1]), int(sys.argv[2])
    for name in PREIMPORT.split():
        try:
            __import__(name)
        except ImportError:
            pass
    import site

    site.setquit()  # `python -I` programs may call exit()/quit(); -S skipped defining them
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    cfg = recv(rfd)
    if cfg is None:
        return
    try:
        st = setup(cfg)
    except SystemExit as exc:
        send(wfd, {"ready": False, "error": str(exc)})
        return
    send(wfd, {"ready": True, "isolation": st.isolation, "flavor": st.flavor, "warnings": st.warnings})
    # Pre-fork server hygiene: move everything allocated so far out of the collector's reach, and collect nothing
    # in the trusted processes. A collection in a forked child walks (and so copies) the whole inherited heap.
    gc.freeze()
    gc.disable()
    while True:
        req = recv(rfd)
        if req is None:
            break
        try:
            resp = handle(req, st)
        except Exception:
            resp = {"error": "sandbox zygote error: " + traceback.format_exc(limit=4)}
        send(wfd, resp)
    if st.fallback_base:
        shutil.rmtree(st.fallback_base, ignore_errors=True)


if __name__ == "__main__":
    main()
