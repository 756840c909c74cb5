"""rljudge's code sandbox: Firejail, every test of a submission in its own limited child.

Public API::

    extract_program(response, strip_think=True) -> str | None
    execute(program, suite, limits=None, mode="all", session=None) -> judgement dict  (blocking)
    JailSession(scope).judge(program, suite, limits, mode) -> judgement dict  (a warm jail)
    run_budget_s(suite, limits) -> float                                     (hard wall budget)
    CodeJudge(max_workers).judge(program, suite, limits, mode, scope=None) -> judgement dict

Jails: a jail serves the submissions of one *scope* one after another (the workers pass the batch
id, so a jail never holds two callers' code), up to ``MAX_SUBMISSIONS_PER_JAIL``, and is replaced
after any failure; scope None, or a harness that cannot drop to a sandbox uid (a worker not
running as root), gives a submission a jail of its own. Starting a jail costs ~20 ms of
CPU and the interpreter another ~10; serving a submission in a warm one costs a fork or two.

A judgement is ``{"verdict", "passed", "total", "tests": [{"status", "time_ms", "detail"}],
"detail"}``; ``verdict`` is one of correct, wrong_answer, time_limit, memory_limit, runtime_error,
output_limit, compile_error, sandbox_error.

Threat model
============
The adversary is the submitted program (RL rollouts: buggy, resource-hungry, or reward-hacking by
accident or by learned behaviour). The judge process, the test suites and the host are trusted.

Covered:
- Escape and exfiltration: no network (own empty network namespace, only AF_INET sockets
  allowed, so filesystem UNIX sockets such as Redis's are unreachable), a read-only filesystem view
  with an empty home, /tmp and /etc, the project tree, /root, /home, /var, /run's sockets and every
  other non-system top-level directory hidden; an environment holding only PATH and LANG; seccomp,
  no_new_privs, no capabilities and an unused uid for the program, so it cannot signal, trace or
  read the memory of the harness, nor read root-only files.
- Resource abuse, per test: CPU seconds (RLIMIT_CPU and measured rusage), a wall cap for sleepers,
  address space, processes/threads, open files, file size, core dumps off, captured output capped;
  every process the test left behind is killed after it. Per submission: a Pebble timeout kills
  the worker, and the jail dies with it (PR_SET_PDEATHSIG, pid namespace).
- Reward hacks: comparisons happen outside the jail on plain decoded values, so printing, early
  ``exit(0)``/``sys.exit``/``os._exit``, overriding builtins or ``__eq__``, or patching the
  harness's functions cannot turn a failure into a pass; results travel on a pipe the program's
  stdout cannot reach and carry a per-test random nonce; call/assert/pytest tests pass only after
  the harness saw them finish; expected answers never enter the jail (stdio/call).
- Nothing carries over between submissions, whether in separate jails or one after another in a
  warm jail: each is served by a fresh fork of a harness loop that never reads programs, tests or
  results (a later submission cannot find an earlier one's data in its memory); every process of
  the sandbox uid is killed before the next starts; the filesystem is read-only to that uid; SysV
  IPC and POSIX message queues (which outlive processes) are refused by seccomp.

Not covered:
- Kernel exploits (seccomp narrows the surface; it is not a VM boundary). Use a VM/gVisor tier
  for hostile, rather than merely misbehaving, code.
- In-process introspection for assert/pytest tests: the test code runs in the program's own
  process, so a program that walks interpreter frames can read the asserts' expected values, find
  the nonce and forge the completion message. Asserts other than ``a <op> b``, ``x``, ``not x``
  are evaluated in that process too.
- Cross-submission CPU contention: verdicts use CPU time, so load does not change them, but
  wall caps (sleepers) are wall clock.
- Memory outside the address-space limit (page cache, kernel buffers) and the jail's own tmpfs
  mounts, which are read-only for the program.
"""

from .extract import extract_program
from .pool import CodeJudge
from .runner import JailSession, execute, run_budget_s

__all__ = ["CodeJudge", "JailSession", "execute", "extract_program", "run_budget_s"]
