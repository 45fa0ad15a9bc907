"""Toolchains: which languages this machine can run, how to compile and run each, and what the sandbox must expose.

Commands follow MultiPL-E's own evaluation (same compilers, flags and harness conventions) so that scores are
comparable; paths are resolved here, on the host, and the sandbox bind-mounts what they need read-only.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field

from datatrove_pipelines.languages import language_key

LANGUAGES = ("python", "cpp", "java", "javascript", "typescript", "rust", "go", "bash")
# Languages whose runtime reserves large virtual ranges (JVM, V8, Go): limit RLIMIT_DATA only, not RLIMIT_AS.
_VIRTUAL_HUNGRY = {"java", "javascript", "typescript", "go"}


def normalize_language(name: str) -> str | None:
    """The sandbox language a label names (``"c++"``, ``"js"``, ``"sh"``, ...; aliases live in
    ``datatrove_pipelines.languages``, the one home of language names), or None when the sandbox cannot run it."""
    key = language_key(name)
    return key if key in LANGUAGES else None


@dataclass(frozen=True)
class Phase:
    """One command inside the sandbox; ``{work}`` and ``{tmp}`` are filled in by the zygote."""

    name: str  # "compile" or "run"
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    python_inprocess: bool = False


@dataclass(frozen=True)
class Plan:
    files: dict[str, str]
    phases: list[Phase]


def _which(name: str) -> str | None:
    path = shutil.which(name)
    return os.path.realpath(path) if path else None


@functools.lru_cache(maxsize=1)
def toolchains() -> dict[str, dict[str, str]]:
    """Resolve each language's executables once per process; a language is available iff it has an entry."""
    found: dict[str, dict[str, str]] = {}
    found["python"] = {"python": os.path.realpath(sys.executable)}
    if gxx := _which("g++"):
        found["cpp"] = {"gxx": gxx}
    javac, java = _which("javac"), _which("java")
    if javac and java:
        entry = {"javac": javac, "java": java}
        for jar in (os.environ.get("SEED_CODER_JAVATUPLES_JAR", ""), "/usr/share/java/javatuples.jar"):
            if jar and os.path.isfile(jar):
                entry["javatuples"] = os.path.realpath(jar)
                break
        found["java"] = entry
    if node := _which("node"):
        found["javascript"] = {"node": node}
        tsc = os.environ.get("SEED_CODER_TSC") or shutil.which("tsc")
        if tsc:
            found["typescript"] = {"node": node, "tsc": os.path.realpath(tsc)}
    if rustc := shutil.which("rustc"):
        sysroot = _run_quiet([rustc, "--print", "sysroot"])
        real = os.path.join(sysroot, "bin", "rustc") if sysroot else ""
        if real and os.path.isfile(real):  # bypass the rustup proxy, which needs $HOME/.rustup
            found["rust"] = {"rustc": real, "sysroot": sysroot}
    if go := shutil.which("go"):
        goroot = _run_quiet([go, "env", "GOROOT"])
        if goroot and os.path.isfile(os.path.join(goroot, "bin", "go")):
            found["go"] = {"go": os.path.join(goroot, "bin", "go"), "goroot": goroot}
    if bash := _which("bash"):
        found["bash"] = {"bash": bash}
    return found


def _run_quiet(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def available_languages() -> list[str]:
    tc = toolchains()
    return [lang for lang in LANGUAGES if lang in tc]


_STANDARD_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_ETC_ENTRIES = (
    "alternatives ld.so.cache ld.so.conf ld.so.conf.d passwd group nsswitch.conf hosts localtime "
    "ssl ca-certificates mime.types"
)


def _prefix_of(executable: str) -> str:
    """The install prefix of a binary (``<prefix>/bin/tool``), used to expose toolchains living outside /usr."""
    return os.path.dirname(os.path.dirname(executable))


def mount_plan() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Read-only bind mounts and symlinks that make up the sandbox's minimal root."""
    binds: list[tuple[str, str]] = []
    symlinks: list[tuple[str, str]] = []
    for d in _STANDARD_DIRS:
        if os.path.islink(d):
            symlinks.append((os.readlink(d), d))
        elif os.path.isdir(d):
            binds.append((d, d))
    etc = _ETC_ENTRIES.split()
    if os.path.isdir("/etc"):
        etc += [e for e in os.listdir("/etc") if e.startswith("java-")]
    for entry in etc:
        path = os.path.join("/etc", entry)
        if os.path.exists(path):
            binds.append((os.path.realpath(path), path))
    extra = {sys.base_prefix, sysconfig.get_config_var("prefix") or sys.base_prefix}
    for lang, entry in toolchains().items():
        for key, path in entry.items():
            if key in {"sysroot", "goroot"}:
                extra.add(path)
            elif lang != "python":
                extra.add(_prefix_of(path) if os.path.isfile(path) else path)
    for path in sorted(extra):
        real = os.path.realpath(path)
        if not any(real == d or real.startswith(d + "/") for d in _STANDARD_DIRS if not os.path.islink(d)):
            binds.append((real, real))
    return binds, symlinks


def _path_env(*executables: str) -> str:
    dirs = [os.path.dirname(e) for e in executables] + ["/usr/local/bin", "/usr/bin", "/bin"]
    return ":".join(dict.fromkeys(dirs))


def _base_env(*executables: str) -> dict[str, str]:
    return {
        "PATH": _path_env(*executables),
        "HOME": "{tmp}",
        "TMPDIR": "{tmp}",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
    }


_JAVA_MAIN = re.compile(r"\bclass\s+(\w+)[^{]*\{")


def _java_main_class(source: str) -> str:
    """The class that declares ``main`` (the last class opened before it), else the first public class."""
    main_at = source.find("static void main")
    best = None
    for m in _JAVA_MAIN.finditer(source):
        if main_at < 0 or m.start() < main_at:
            best = m.group(1)
    public = re.search(r"\bpublic\s+(?:final\s+|abstract\s+)*class\s+(\w+)", source)
    if public and (best is None or main_at < 0):
        return public.group(1)
    return best or "Main"


def plan(language: str, program: str, memory_mb: int, compile_memory_mb: int) -> Plan:
    """Files to write and commands to run for one program; ``language`` must be normalized and available."""
    tc = toolchains()[language]
    if language == "python":
        return Plan(
            {"main.py": program},
            [Phase("run", ["__python__", "{work}/main.py"], _base_env(tc["python"]), python_inprocess=True)],
        )
    if language == "bash":
        return Plan({"main.sh": program}, [Phase("run", [tc["bash"], "main.sh"], _base_env(tc["bash"]))])
    if language == "cpp":
        env = _base_env(tc["gxx"])
        return Plan(
            {"main.cpp": program},
            [
                Phase("compile", [tc["gxx"], "-std=c++17", "-o", "main", "main.cpp"], env),
                Phase("run", ["{work}/main"], env),
            ],
        )
    if language == "rust":
        env = _base_env(tc["rustc"])
        return Plan(
            {"main.rs": program},
            [
                Phase("compile", [tc["rustc"], "--edition", "2021", "-o", "main", "main.rs"], env),
                Phase("run", ["{work}/main"], env),
            ],
        )
    if language == "java":
        cls = _java_main_class(program)
        cp = "{work}" + (":" + tc["javatuples"] if "javatuples" in tc else "")
        jvm = ["-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-XX:-UsePerfData", "-XX:ActiveProcessorCount=2"]
        env = _base_env(tc["java"], tc["javac"])
        heap_c, heap_r = max(64, compile_memory_mb // 2), max(32, memory_mb // 2)
        javac = [tc["javac"], *[f"-J{f}" for f in jvm], f"-J-Xmx{heap_c}m", "-encoding", "UTF-8", "-nowarn"]
        return Plan(
            {f"{cls}.java": program},
            [
                Phase("compile", [*javac, "-cp", cp, "-d", "{work}", f"{cls}.java"], env),
                Phase("run", [tc["java"], *jvm, f"-Xmx{heap_r}m", "-ea", "-cp", cp, cls], env),
            ],
        )
    if language == "javascript":
        node = [tc["node"], f"--max-old-space-size={max(32, memory_mb // 2)}"]
        return Plan({"main.js": program}, [Phase("run", [*node, "main.js"], _base_env(tc["node"]))])
    if language == "typescript":
        env = _base_env(tc["node"], tc["tsc"])
        env["NODE_OPTIONS"] = f"--max-old-space-size={max(64, compile_memory_mb // 2)}"
        run_env = _base_env(tc["node"])
        node = [tc["node"], f"--max-old-space-size={max(32, memory_mb // 2)}"]
        return Plan(
            {"main.ts": program},
            [
                Phase("compile", [tc["node"], tc["tsc"], "--target", "esnext", "main.ts"], env),
                Phase("run", [*node, "main.js"], run_env),
            ],
        )
    if language == "go":
        env = _base_env(tc["go"])
        env.update(
            {
                "GOROOT": tc["goroot"],
                "GOCACHE": "{tmp}/gocache",
                "GOPATH": "{tmp}/gopath",
                "GOFLAGS": "-mod=mod",
                "GO111MODULE": "auto",
                "GOTOOLCHAIN": "local",
                "GOPROXY": "off",
                "CGO_ENABLED": "0",
            }
        )
        return Plan(
            {"main_test.go": program},
            [
                Phase("compile", [tc["go"], "test", "-c", "-o", "main.test", "main_test.go"], env),
                Phase("run", ["{work}/main.test", "-test.count=1"], _base_env(tc["go"])),
            ],
        )
    raise ValueError(f"no plan for language {language!r}")


def limit_address_space(language: str) -> bool:
    return language not in _VIRTUAL_HUNGRY
