"""Local sandbox for untrusted code (evaluation, GRPO rewards, sandbox-verified SFT data, DPO judging).

See ``docs/sandbox.md`` for the isolation layers and the threat model, and ``eval.sandbox.core`` for the status
semantics. Typical use::

    from eval.sandbox import run_program, SandboxLimits
    result = run_program("python", code, test_code=tests, limits=SandboxLimits(timeout_s=5))
    result.status  # Status.PASSED, Status.FAILED, ...
"""

from eval.sandbox.core import (  # noqa: F401 (re-exported; the list lives in core.__all__)
    ExecutionRequest,
    ExecutionResult,
    SandboxLimits,
    Status,
    __all__,
    available_languages,
    isolation_level,
    run_batch,
    run_program,
)
