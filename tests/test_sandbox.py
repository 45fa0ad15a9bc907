"""The sandbox contains hostile programs and gets correct programs right, in every installed language.

All runs are real sandboxed subprocesses. Benchmark files are read from the shared folder beside the checkout (or
SEED_CODER_BENCHMARKS_DIR); tests that need them skip when it is absent.
"""

from __future__ import annotations

import ast
import gzip
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eval.benchmarks import local_benchmarks_dir
from eval.sandbox import (
    ExecutionRequest,
    SandboxLimits,
    Status,
    available_languages,
    core,
    isolation_level,
    languages,
    run_batch,
    run_program,
)

REPO = Path(__file__).resolve().parents[1]
BENCH = Path(local_benchmarks_dir() or "/nonexistent")
FAST = SandboxLimits(timeout_s=2.0, compile_timeout_s=30.0, memory_mb=256)
LANGS = set(available_languages())
NAMESPACES = isolation_level() == "namespaces"
needs_ns = pytest.mark.skipif(not NAMESPACES, reason="user/mount/net namespaces unavailable here")


def _procs_with(marker: str) -> list[int]:
    """PIDs on the host whose command line contains ``marker`` (leftover sandbox children)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if marker.encode() in f.read():
                        found.append(int(entry))
            except OSError:
                pass
    return found


def _needs(lang: str):
    return pytest.mark.skipif(lang not in LANGS, reason=f"no {lang} toolchain installed")


# ----------------------------------------------------------------------------------------------------------------
# hostile programs


def test_fork_bomb_is_contained_and_leaves_nothing_behind():
    marker = "8888.25"
    code = (
        "import os\n"
        "while True:\n"
        "    try:\n"
        "        if os.fork() == 0:\n"
        f"            os.execv('/bin/sleep', ['sleep', '{marker}'])\n"
        "    except OSError:\n"
        "        pass\n"
    )
    r = run_program("python", code, limits=FAST)
    assert r.status in (Status.TIMEOUT, Status.RUNTIME_ERROR), r
    assert r.wall_time_s < FAST.timeout_s + 2
    time.sleep(0.2)
    assert _procs_with(marker) == []
    assert run_program("python", "print('still fine')").stdout == "still fine\n"


def test_bash_fork_bomb():
    marker = "seed-bomb-5150"  # argv[0] of every bash process of the bomb (subshells inherit it)
    # The bomb forks in the background; the script then spins in a builtin loop (no fork, so the status cannot
    # depend on whether the process limit was hit): the run must time out and take the whole bomb with it.
    code = f"exec -a {marker} bash -c 'b() {{ b | b & }}; b; while :; do :; done'"
    r = run_program("bash", code, limits=FAST)
    assert r.status == Status.TIMEOUT, r
    assert r.wall_time_s < FAST.timeout_s + 2
    time.sleep(0.2)
    assert _procs_with(marker) == []
    assert run_program("bash", "echo alive").stdout == "alive\n"


def test_memory_bomb_reports_memory():
    r = run_program("python", "x = []\nwhile True:\n    x.append(bytearray(10**7))\n", limits=FAST)
    assert r.status == Status.MEMORY, r


@_needs("cpp")
def test_cpp_memory_bomb_reports_memory():
    code = "#include <cstring>\nint main(){ while (true) { char* p = new char[1 << 24]; memset(p, 1, 1 << 24); } }"
    r = run_program("cpp", code, limits=FAST)
    assert r.status == Status.MEMORY, r


def test_infinite_loop_times_out():
    t0 = time.monotonic()
    r = run_program("python", "while True:\n    pass\n", limits=SandboxLimits(timeout_s=1.0))
    assert r.status == Status.TIMEOUT
    assert 0.9 <= r.wall_time_s < 2.5
    assert time.monotonic() - t0 < 5


def test_disk_filler_is_stopped():
    one_file = "f = open('big', 'wb')\nwhile True:\n    f.write(b'x' * 10**6)\n"
    r = run_program("python", one_file, limits=FAST)
    assert r.status == Status.RUNTIME_ERROR and "File too large" in r.stderr, r
    if NAMESPACES:  # the work directory is a size-limited tmpfs; the rlimits-only fallback has no total cap
        many_files = "i = 0\nwhile True:\n    open(f'f{i}', 'wb').write(b'x' * (30 << 20))\n    i += 1\n"
        r = run_program("python", many_files, limits=FAST)
        assert r.status == Status.RUNTIME_ERROR and "No space left" in r.stderr, r
        assert r.wall_time_s < FAST.timeout_s


def test_writing_outside_the_work_directory_fails(tmp_path):
    targets = [tmp_path / "pwned", Path("/pwned-by-sandbox"), Path("/etc/pwned-by-sandbox")]
    targets += [Path("/usr/pwned-by-sandbox"), REPO / "pwned-by-sandbox"]
    code = (
        "import sys\n"
        f"for p in {[str(t) for t in targets]!r}:\n"
        "    try:\n"
        "        open(p, 'w').write('x')\n"
        "        print('WROTE', p)\n"
        "    except OSError as e:\n"
        "        print('blocked', p, e.errno)\n"
        "open('inside.txt', 'w').write('ok')\n"
        "print(open('inside.txt').read())\n"
    )
    r = run_program("python", code, limits=FAST)
    assert r.status == Status.PASSED, r
    assert "WROTE" not in r.stdout and r.stdout.strip().endswith("ok")
    for t in targets:
        assert not t.exists(), t


def test_reading_a_secret_outside_the_work_directory_fails(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE-42")
    secret.chmod(0o644)  # readable by anyone on the host: only the sandbox's view of the filesystem protects it
    code = f"try:\n    print(open({str(secret)!r}).read())\nexcept OSError as e:\n    print('blocked', e.errno)\n"
    r = run_program("python", code, limits=FAST)
    assert "TOP-SECRET" not in r.stdout + r.stderr
    if NAMESPACES:
        assert "blocked 2" in r.stdout  # the path does not even exist inside


@needs_ns
def test_no_network_even_to_loopback():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(5)
    srv.settimeout(0.5)
    port = srv.getsockname()[1]
    try:
        code = (
            "import socket\ns = socket.socket()\ns.settimeout(2)\n"
            f"s.connect(('127.0.0.1', {port}))\nprint('CONNECTED')\n"
        )
        r = run_program("python", code, limits=FAST)
        assert r.status == Status.RUNTIME_ERROR and "CONNECTED" not in r.stdout, r
        with pytest.raises(socket.timeout):
            srv.accept()
    finally:
        srv.close()


def test_killing_its_parent_harms_nothing():
    code = (
        "import os, signal\n"
        "for target in (os.getppid(), 1, -1):\n"
        "    try:\n"
        "        os.kill(target, signal.SIGKILL)\n"
        "    except OSError as e:\n"
        "        print('refused', target, e.errno)\n"
        "print('alive')\n"
    )
    r = run_program("python", code, limits=FAST)
    assert r.status == Status.PASSED and r.stdout.endswith("alive\n"), r
    assert run_program("python", "print(1)").status == Status.PASSED  # the worker survived


def test_environment_is_scrubbed(monkeypatch):
    monkeypatch.setenv("SEED_CODER_TEST_TOKEN", "tok-should-not-leak")
    monkeypatch.setattr(core, "_POOL", core._Pool())  # a fresh worker, started while the token is set
    try:
        code = (
            "import os\nprint(dict(os.environ))\n"
            "for p in os.listdir('/proc'):\n"
            "    try:\n        print(open(f'/proc/{p}/environ', 'rb').read())\n    except OSError:\n        pass\n"
        )
        r = run_program("python", code, limits=FAST)
        b = run_program("bash", "env; cat /proc/1/environ 2>/dev/null; true", limits=FAST)
    finally:
        core._POOL.close()
    assert r.status == Status.PASSED and b.status == Status.PASSED
    assert "tok-should-not-leak" not in r.stdout + r.stderr + b.stdout + b.stderr
    assert "SEED_CODER_TEST_TOKEN" not in r.stdout + b.stdout


def test_printing_gigabytes_is_cut_off():
    limits = SandboxLimits(timeout_s=10, max_output_bytes=1000)
    t0 = time.monotonic()
    r = run_program("python", "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n", limits=limits)
    assert r.status == Status.KILLED and r.stdout_truncated, r
    assert len(r.stdout) == 1000
    assert time.monotonic() - t0 < 5


def test_large_but_bounded_output_is_truncated_not_killed():
    limits = SandboxLimits(max_output_bytes=100)
    r = run_program("python", "print('y' * 100000)", limits=limits)
    assert r.status == Status.PASSED and r.stdout == "y" * 100 and r.stdout_truncated


def test_background_children_do_not_outlive_the_run():
    marker = "7777.125"
    code = (
        "import os\n"
        "if os.fork() == 0:\n"
        f"    os.execv('/bin/sleep', ['sleep', '{marker}'])\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        f"    os.execv('/bin/sleep', ['sleep', '{marker}'])\n"
        "print('spawned')\n"
    )
    r = run_program("python", code, limits=FAST)
    assert r.status == Status.PASSED and r.wall_time_s < 1.5, r
    time.sleep(0.2)
    assert _procs_with(marker) == []
    b = run_program("bash", f"(sleep {marker} &) ; nohup sleep {marker} >/dev/null 2>&1 & echo done", limits=FAST)
    assert b.status == Status.PASSED and b.stdout == "done\n", b
    time.sleep(0.2)
    assert _procs_with(marker) == []


@_needs("cpp")
def test_compile_time_bomb_is_contained():
    code = (
        "template <int N, int M> struct B { static const long v = B<N - 1, 2 * M>::v + B<N - 1, 2 * M + 1>::v; };\n"
        "template <int M> struct B<0, M> { static const long v = M; };\n"
        "int main() { return B<26, 1>::v != 0; }\n"
    )
    limits = SandboxLimits(compile_timeout_s=4.0, compile_memory_mb=512)
    t0 = time.monotonic()
    r = run_program("cpp", code, limits=limits)
    assert r.phase == "compile" and r.status in (Status.TIMEOUT, Status.MEMORY, Status.COMPILE_ERROR), r
    assert time.monotonic() - t0 < 10


@needs_ns
def test_sandbox_view_is_minimal_and_unprivileged():
    code = (
        "import ctypes, os\n"
        "print(sorted(os.listdir('/')))\n"
        "print(open('/proc/self/status').read().split('CapEff:')[1].split()[0])\n"
        "print(len([p for p in os.listdir('/proc') if p.isdigit()]))\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "print(libc.unshare(0x10000000), libc.mount(None, b'/usr', None, 32 | 4096, None))\n"
        "print(os.path.exists('/etc/shadow'), os.path.exists('/etc/environment'))\n"
    )
    r = run_program("python", code, limits=FAST)
    assert r.status == Status.PASSED, r
    top, caps, nprocs, escapes, etc = r.stdout.splitlines()
    assert escapes == "-1 -1"  # no nested user namespace (chrooted), no remounting the read-only root
    assert etc == "False False"
    entries = ast.literal_eval(top)
    assert {"work", "tmp", "usr", "proc"} <= set(entries)
    assert not {"home", "var", "boot", "mnt", "opt", "srv"} & set(entries)
    assert int(caps, 16) == 0
    assert int(nprocs) <= 3  # PID 1 (the supervisor) and this program: a private PID namespace


def test_stdin_is_fed():
    r = run_program("python", "import sys\nprint(sys.stdin.read().upper())", stdin="abc\n" * 1000, limits=FAST)
    assert r.status == Status.PASSED and r.stdout == "ABC\n" * 1000 + "\n"


# ----------------------------------------------------------------------------------------------------------------
# statuses and API


@pytest.mark.parametrize(
    "code,status",
    [
        ("print('ok')", Status.PASSED),
        ("assert 1 == 2", Status.FAILED),
        ("import sys\nsys.exit(3)", Status.FAILED),
        ("1 / 0", Status.RUNTIME_ERROR),
        ("def f(:\n    pass", Status.COMPILE_ERROR),
        ("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)", Status.RUNTIME_ERROR),
        ("exit(0)", Status.PASSED),
    ],
)
def test_python_statuses(code, status):
    assert run_program("python", code, limits=FAST).status == status


def test_test_code_is_appended():
    r = run_program("python", "def f(x):\n    return x + 1", test_code="assert f(1) == 2\nprint('ok')")
    assert r.status == Status.PASSED and r.stdout == "ok\n"


def test_bad_input_never_crashes(monkeypatch):
    assert run_program("cobol", "x").status == Status.SANDBOX_ERROR
    assert run_program("python", None).status == Status.SANDBOX_ERROR  # type: ignore[arg-type]
    tc = {k: v for k, v in languages.toolchains().items() if k != "rust"}
    monkeypatch.setattr(languages, "toolchains", lambda: tc)
    r = run_program("rs", "fn main() {}")
    assert r.status == Status.SANDBOX_ERROR and "toolchain" in (r.error or "")


def test_aliases_and_result_dict():
    r = run_program("py", "print(1)")
    d = r.to_dict()
    assert d["status"] == "passed" and d["language"] == "python" and json.dumps(d)
    assert {"status", "exit_code", "wall_time_s", "cpu_time_s", "stdout", "stderr"} <= set(d)


def test_batch_preserves_order():
    reqs = [ExecutionRequest("python", f"import time\ntime.sleep({0.05 * (i % 3)})\nprint({i})") for i in range(12)]
    reqs.append(ExecutionRequest("python", "assert False"))
    out = run_batch(reqs, workers=2)
    assert [r.stdout for r in out[:-1]] == [f"{i}\n" for i in range(12)]
    assert out[-1].status == Status.FAILED


def test_cli_prints_one_json_object(tmp_path):
    src = tmp_path / "p.py"
    src.write_text("print(input() * 2)")
    inp = tmp_path / "in.txt"
    inp.write_text("ab\n")
    cmd = [sys.executable, "-m", "eval.sandbox", "--language", "python", str(src), "--stdin", str(inp)]
    proc = subprocess.run([*cmd, "--timeout", "5", "--memory-mb", "256"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["status"] == "passed" and out["stdout"] == "abab\n"


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--memory-mb", "-5"), ("--memory-mb", "0"), ("--timeout", "0"), ("--timeout", "-1"), ("--timeout", "inf")]
    + [("--timeout", "1e10"), ("--compile-timeout", "nan"), ("--timeout", "abc")],
)
def test_cli_rejects_bad_limits_in_one_line(tmp_path, flag, value):
    """A zero/negative limit once meant no limit; inf or a huge time limit crashed in select() with a traceback."""
    src = tmp_path / "p.py"
    src.write_text("print(1)")
    cmd = [sys.executable, "-m", "eval.sandbox", "--language", "python", str(src), flag, value]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.returncode == 2 and proc.stdout == "", proc
    assert "Traceback" not in proc.stderr and proc.stderr.splitlines()[-1].startswith("python -m eval.sandbox: error:")
    assert value in proc.stderr.splitlines()[-1] or value == "1e10", proc.stderr


def test_fallback_rlimits_only(monkeypatch):
    monkeypatch.setenv("SEED_CODER_SANDBOX_ISOLATION", "rlimits")
    monkeypatch.setattr(core, "_POOL", core._Pool())
    try:
        assert core.isolation_level() == "rlimits"
        assert run_program("python", "print(6 * 7)").stdout == "42\n"
        assert run_program("python", "while True: pass", limits=SandboxLimits(timeout_s=1)).status == Status.TIMEOUT
        mem = run_program("python", "x = bytearray(4 << 30)", limits=FAST)
        assert mem.status == Status.MEMORY
    finally:
        core._POOL.close()


# ----------------------------------------------------------------------------------------------------------------
# correctness on real benchmarks


def _humaneval() -> list[dict]:
    path = BENCH / "humaneval" / "HumanEval.jsonl.gz"
    if not path.exists():
        pytest.skip(f"HumanEval data not found under {BENCH}")
    with gzip.open(path, "rt") as f:
        return [json.loads(line) for line in f if line.strip()]


def _he_program(p: dict, completion: str) -> str:
    return p["prompt"] + completion + "\n" + p["test"] + f"\ncheck({p['entry_point']})\n"


def test_all_humaneval_reference_solutions_pass():
    problems = _humaneval()
    assert len(problems) == 164
    reqs = [ExecutionRequest("python", _he_program(p, p["canonical_solution"])) for p in problems]
    results = run_batch(reqs)
    bad = [(p["task_id"], r.status, r.stderr[-300:]) for p, r in zip(problems, results, strict=True) if not r.passed]
    assert not bad, bad
    wrong = _he_program(problems[0], "    return False\n")
    r = run_program("python", wrong)
    assert r.status == Status.FAILED, r


# Hand-written solutions to HumanEval_23 (strlen) and HumanEval_107 (even_odd_palindrome) in MultiPL-E's form.
STRLEN = {
    "cpp": ("    return string.size();\n", "    return 0;\n"),
    "go": ("    return len(myString)\n}\n\n", "    return 0\n}\n\n"),
    "java": ("        return string.length();\n", "        return 0l;\n"),
    "js": ("  return string.length;\n}\n\n", "  return 0;\n}\n\n"),
    "ts": ("  return string.length;\n}\n\n", "  return 0;\n}\n\n"),
    "rs": ("    string.len() as isize\n", "    0\n"),
    "sh": ('    echo -n "${#1}"\n', "    echo 0\n"),
}
RUNTIME_ERROR = {
    "cpp": "    int* p = nullptr; return *p + (long)string.size() * 0 + *(volatile int*)p;\n",
    "java": "        String s = null; return s.length();\n",
    "js": "  return null.length;\n}\n\n",
    "ts": "  return (null as any).length;\n}\n\n",
    "rs": "    let v: Vec<isize> = Vec::new(); v[string.len() + 1]\n",
    "go": "    var m map[string]int\n    m[myString] = 1\n    return 0\n}\n\n",
}
PALINDROME_JAVA = """        long even = 0, odd = 0;
        for (long i = 1; i <= n; i++) {
            String s = Long.toString(i);
            if (new StringBuilder(s).reverse().toString().equals(s)) {
                if (i % 2 == 0) even++; else odd++;
            }
        }
        return Pair.with(even, odd);
"""
LANG_OF = {
    "cpp": "cpp",
    "go": "go",
    "java": "java",
    "js": "javascript",
    "ts": "typescript",
    "rs": "rust",
    "sh": "bash",
}


def _multipl_e(ext: str) -> dict[str, dict]:
    path = BENCH / "multipl-e" / f"humaneval-{ext}.jsonl"
    if not path.exists():
        pytest.skip(f"MultiPL-E data not found under {BENCH}")
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return {r["name"].split("_")[1]: r for r in rows}


def test_multipl_e_correct_and_wrong_solutions_per_language():
    cases = []  # (ext, kind, request)
    for ext, (good, wrong) in STRLEN.items():
        if LANG_OF[ext] not in LANGS:
            continue
        problem = _multipl_e(ext)["23"]
        for kind, completion in (("passed", good), ("failed", wrong)):
            cases.append((ext, kind, problem["prompt"] + completion + problem["tests"]))
        if ext in RUNTIME_ERROR:
            cases.append((ext, "runtime_error", problem["prompt"] + RUNTIME_ERROR[ext] + problem["tests"]))
    if "java" in LANGS:
        problem = _multipl_e("java")["107"]
        cases.append(("java", "passed", problem["prompt"] + PALINDROME_JAVA + problem["tests"]))
        wrong = PALINDROME_JAVA.replace("return Pair.with(even, odd)", "return Pair.with(odd, even)")
        cases.append(("java", "failed", problem["prompt"] + wrong + problem["tests"]))
    if not cases:
        pytest.skip("no compiled-language toolchains installed")
    limits = SandboxLimits(timeout_s=10, compile_timeout_s=60)
    results = run_batch([ExecutionRequest(LANG_OF[ext], prog, limits=limits) for ext, _, prog in cases])
    bad = [
        (ext, kind, r.status.value, r.phase, r.stderr[-400:])
        for (ext, kind, _), r in zip(cases, results, strict=True)
        if r.status.value != kind
    ]
    assert not bad, bad
