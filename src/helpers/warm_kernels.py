"""Kernels that start warm: forked from one process per run that has imported the notebooks' libraries already.

A notebook's kernel spends 2.5-3.4 s starting and importing pandas, Ibis, DuckDB, scikit-learn, seaborn and the
helpers before its first line of work: in a demo month, about 21 of the seven kernels' 55 CPU seconds, on the two
cores the notebooks share. On Linux the runner starts one :class:`Zygote` per run, which imports the kernel and
what the run's notebooks import (:func:`imports_of`) once; each kernel is then a fork of it that turns into an
ordinary IPython kernel, with the notebook's own environment, working directory and connection file. Elsewhere, or
for a kernel of another Python, the runner starts kernels as Jupyter does.

The zygote starts with the environment every kernel of the run shares (the numerical libraries' thread counts are
read when they load); what differs per kernel (its DuckDB share, what it waits for) is read at run time. What a
library decides when it is imported outside a kernel is set as a kernel would have it (:func:`_become_kernel`):
the executed notebooks are the same, output for output. The zygote holds no thread of its own when it forks, and
ends when the runner closes its pipe.
"""
from __future__ import annotations

import ast
import contextlib
import gc
import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

import psutil
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

# Imported in the zygote whatever the notebooks import: the kernel itself. Never: the inline backend of matplotlib,
# which, loaded outside a kernel, would not hook the kernel's figures into the page.
KERNEL = ("ipykernel.kernelapp", "ipykernel.ipkernel")
NEVER = ("matplotlib_inline",)
KERNEL_MODULE = "ipykernel_launcher"  # the kernel a Python kernelspec starts: python -m ipykernel_launcher -f ...
INLINE = "module://matplotlib_inline.backend_inline"  # the backend ipykernel sets when MPLBACKEND is not set


def imports_of(sources: list[str]) -> list[str]:
    """The modules a notebook's code cells (`sources`) import at their top level, in order: ``import a.b`` gives
    a.b, ``from a import b`` a and a.b (b may be a module). A cell that is not Python (a magic) is skipped."""
    found: dict[str, None] = {}
    for source in sources:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.Import):
                found.update(dict.fromkeys(alias.name for alias in node.names))
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.update(dict.fromkeys([node.module, *(f"{node.module}.{a.name}" for a in node.names)]))
    return [m for m in found if not m.startswith(NEVER)]


def interpreter(kernel_name: str) -> list[str] | None:
    """The command that starts kernel `kernel_name`'s Python, with its options (``-Xfrozen_modules=off``), when its
    kernels can be forked: an IPython kernel (``python -m ipykernel_launcher``), on Linux (macOS's system libraries
    do not allow a fork without exec); else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        argv = KernelSpecManager().get_kernel_spec(kernel_name).argv
    except NoSuchKernel:
        return None
    at = next((i for i in range(len(argv) - 1) if argv[i:i + 2] == ["-m", KERNEL_MODULE]), None)
    return argv[:at] if at else None


class ForkedKernel:
    """A kernel forked by the zygote, as jupyter_client handles a kernel's ``Popen``: its pid, whether it still runs
    (a zombie, not yet reaped by the zygote, has ended), signals, wait. Its exit code is not known here: -1."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int):
        self.pid, self.returncode = pid, None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                ended = psutil.Process(self.pid).status() == psutil.STATUS_ZOMBIE
            except psutil.NoSuchProcess:
                ended = True
            self.returncode = -1 if ended else None
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"kernel {self.pid}", timeout)
            time.sleep(0.05)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


class Zygote:
    """The process kernels are forked from, for one run (a context manager: the process ends with the block).

    ``python``: :func:`interpreter`, the kernels' Python and its options; ``env``: the environment it starts with, what
    every kernel of the run shares; ``modules``: what it imports for them (:func:`imports_of` their notebooks); ``cwd``:
    the kernels' folder, where it starts, so that it finds the modules they would find."""

    def __init__(self, python: list[str], env: dict[str, str], modules: list[str],
                 cwd: str | os.PathLike | None = None):
        self.python, self._lock = python, threading.Lock()
        request_read, self._requests = os.pipe()
        self._replies, reply_write = os.pipe()
        self.process = subprocess.Popen(
            [*python, "-m", __name__, str(request_read), str(reply_write), *modules],
            pass_fds=(request_read, reply_write), stdin=subprocess.DEVNULL, env=env, cwd=cwd,
            start_new_session=True)  # Ctrl-C reaches the runner, which stops the run
        os.close(request_read)
        os.close(reply_write)
        self._reply_lines = os.fdopen(self._replies, "r")

    def can_start(self, cmd: list[str]) -> bool:
        """Whether the kernel command `cmd` is an IPython kernel of the zygote's Python, and the zygote runs."""
        n = len(self.python)
        return cmd[:n] == self.python and cmd[n:n + 2] == ["-m", KERNEL_MODULE] and self.process.poll() is None

    def start_kernel(self, cmd: list[str], env: dict[str, str], cwd: str | os.PathLike | None) -> ForkedKernel:
        """A kernel running `cmd` (``python -m ipykernel_launcher ...``) in `cwd` with `env`, forked from the zygote."""
        argv = cmd[len(self.python) + 2:]
        env = {**env, "JPY_PARENT_PID": str(os.getpid())}  # as jupyter_client's launch_kernel sets it
        request = json.dumps({"argv": argv, "env": env, "cwd": str(cwd or Path.cwd())}) + "\n"
        with self._lock:  # notebooks side by side start their kernels from their own threads
            os.write(self._requests, request.encode())
            reply = self._reply_lines.readline()
        if not reply:
            raise RuntimeError(f"the process kernels are started from has ended (exit code {self.process.poll()})")
        return ForkedKernel(json.loads(reply)["pid"])

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._requests)
        self._reply_lines.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> Zygote:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --------------------------------------------------------------------------- the zygote's side

def _reap(*_signal) -> None:
    """Collect the exit of every kernel that ended (SIGCHLD), so none is left a zombie."""
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass


def _preload(modules: list[str]) -> None:
    """Import the kernel and `modules`; one that cannot be imported (a name that is no module, a typo) is left to
    the kernel, which says so in the notebook as it would have. Then every object is set aside from the garbage
    collector: its passes would touch them and copy, in each kernel, the pages they share with the zygote."""
    os.environ.setdefault("MPLBACKEND", INLINE)  # before matplotlib loads, as ipykernel would set it
    sys.stdout.flush()
    sys.stderr.flush()
    kept = os.dup(1), os.dup(2)
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 1)  # what an import prints (a library's warning) is not the run's to show
    os.dup2(quiet, 2)
    try:
        for name in [*KERNEL, *modules]:
            with contextlib.suppress(Exception):
                importlib.import_module(name)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, saved in zip((1, 2), kept):
            os.dup2(saved, fd)
            os.close(saved)
        os.close(quiet)
    gc.collect()
    gc.freeze()


def _become_kernel(request: dict, pipes: tuple[int, int]) -> None:
    """In the forked child: take the notebook's session, folder, environment and arguments, and run the kernel as
    ``python -m ipykernel_launcher`` would. Never returns."""
    code = 1
    try:
        os.setsid()  # its own session and process group, as jupyter_client starts a kernel
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for fd in pipes:
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        # the parent a kernel watches: a default ipykernel read from the environment when the zygote imported it
        parent = os.environ.get("JPY_PARENT_PID", "0")
        sys.argv = [KERNEL_MODULE, *request["argv"], f"--IPKernelApp.parent_handle={parent}"]
        sys.path[0] = os.getcwd()  # what python -m puts first: the folder it starts in
        # what a library decided when the zygote imported it outside a kernel, as it decides in one: pandas shows a
        # frame's columns up to the terminal's width outside Jupyter, 20 in a kernel (its is_terminal)
        if "pandas" in sys.modules:
            sys.modules["pandas"].set_option("display.max_columns", 20)
        importlib.import_module("ipykernel.kernelapp").launch_new_instance()  # loaded by the zygote already
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - the kernel's own error goes to its stderr, as a kernel's would
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def main(request_fd: int, reply_fd: int, modules: list[str]) -> None:
    """Import the kernel and `modules`, then fork a kernel for each request line until the runner closes the pipe."""
    _preload(modules)
    signal.signal(signal.SIGCHLD, _reap)
    replies = os.fdopen(reply_fd, "w")
    with os.fdopen(request_fd, "r") as requests:
        for line in requests:
            request = json.loads(line)
            pid = os.fork()
            if pid == 0:
                _become_kernel(request, (request_fd, reply_fd))
            replies.write(json.dumps({"pid": pid}) + "\n")
            replies.flush()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:])
