"""CLI: ``python -m eval.sandbox --language LANG FILE [--stdin FILE] [--timeout S] [--memory-mb M]``.

Prints one JSON object (the ExecutionResult fields). Exit code 0 when the program passed, 1 when it did not, 2 when
the sandbox could not run it.
"""

from __future__ import annotations

import argparse
import json
import sys

from eval.sandbox.core import SandboxLimits, Status, available_languages, run_program

# The flags that set SandboxLimits fields: SandboxLimits checks the values (the one home of what a valid limit is)
LIMIT_FLAGS = {"timeout_s": "--timeout", "compile_timeout_s": "--compile-timeout", "memory_mb": "--memory-mb"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eval.sandbox", description=__doc__.splitlines()[0])
    p.add_argument("file", help="program source file ('-' for standard input)")
    p.add_argument("--language", "-l", required=True, help=f"one of {', '.join(available_languages())}")
    p.add_argument("--stdin", help="file whose content is fed to the program's standard input")
    p.add_argument("--test-file", help="test code appended after the program (with a newline)")
    p.add_argument("--timeout", type=float, default=10.0, help="run time limit in seconds (default 10)")
    p.add_argument("--compile-timeout", type=float, default=60.0, help="compile time limit in seconds")
    p.add_argument("--memory-mb", type=int, default=1024, help="memory limit per process in MiB (default 1024)")
    args = p.parse_args(argv)
    try:  # zero, negative, infinite or huge limits: one usage line naming the flag, before anything runs
        limits = SandboxLimits(
            timeout_s=args.timeout, compile_timeout_s=args.compile_timeout, memory_mb=args.memory_mb
        )
    except ValueError as error:
        message = str(error)
        for field, flag in LIMIT_FLAGS.items():
            message = message.replace(f"SandboxLimits.{field}", flag)
        p.error(message)

    def read(path: str | None) -> str | None:
        if path is None:
            return None
        if path == "-":
            return sys.stdin.read()
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()

    try:
        code, stdin, tests = read(args.file), read(args.stdin), read(args.test_file)
    except OSError as exc:
        print(json.dumps({"status": Status.SANDBOX_ERROR.value, "error": str(exc)}))
        return 2
    result = run_program(args.language, code or "", stdin=stdin, test_code=tests, limits=limits)
    print(json.dumps(result.to_dict(), ensure_ascii=False))
    if result.status == Status.SANDBOX_ERROR:
        return 2
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
