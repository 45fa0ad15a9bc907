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
must only import the standard library: it runs with ``-I -S`` and, once chrooted, may not find anything else. Its
helpers live beside it (``_linux``: syscalls and framing; ``_phase``: the supervisor that runs and watches one
program) and are imported from this directory at start-up, before the chroot.
"""

from __future__ import annotations

import gc
import os
import shutil
import signal
import stat
import sys
import tempfile
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _linux import (  # noqa: E402
    CLONE_NEWIPC,
    CLONE_NEWNET,
    CLONE_NEWNS,
    CLONE_NEWPID,
    CLONE_NEWUSER,
    CLONE_NEWUTS,
    MS_BIND,
    MS_NOATIME,
    MS_NODEV,
    MS_NODIRATIME,
    MS_NOEXEC,
    MS_NOSUID,
    MS_PRIVATE,
    MS_RDONLY,
    MS_REC,
    MS_RELATIME,
    MS_REMOUNT,
    PR_SET_DUMPABLE,
    PR_SET_PDEATHSIG,
    UID_BASE,
    _check,
    _libc,
    drop_to,
    kill_uid,
    mount,
    prctl,
    recv,
    send,
    unshare,
)
from _phase import supervise  # noqa: E402

del sys.path[0]  # untrusted programs run in forks of this interpreter: leave them the usual path


# Modules that untrusted Python commonly imports; loading them once here makes every forked run cheaper.
# Not `threading`: once imported, every fork runs its at-fork hooks, which doubled the cost of a request.
PREIMPORT = (
    "typing collections collections.abc itertools functools math cmath re string heapq bisect hashlib random "
    "fractions decimal statistics copy operator json types dataclasses enum io linecache traceback site numbers "
    "array datetime"
)


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
        drop_to(uid)
        prctl(PR_SET_DUMPABLE, 1)  # setuid made us non-dumpable, which makes /proc/self/*_map root-owned
    _enter_userns(os.getuid(), os.getgid())


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
            kill_uid(st.sandbox_uid)
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
            out = supervise(req, st, work, tmp)
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
