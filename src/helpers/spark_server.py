"""One Spark driver for a month's notebooks: a Spark Connect server that ``retention run`` starts and every kernel
of the month connects to (``engine.spark_shared_driver``).

Started on its own, each notebook's kernel would start a Spark driver (a JVM) of its own: 5-6 s to start it, and
every query then planned and compiled by a cold JVM (a first query 3-4 s). On a small shop that was most of a
Spark month (benchmarks/RESULTS.md). The server is a Spark driver on ``engine.spark_master`` with the config's
settings and Spark's Connect plugin; kernels reach it as ``sc://localhost:PORT`` (:data:`helpers.engine.
REMOTE_VARIABLE`), each in a Spark session of its own (its temporary views and cached tables its own).

:func:`shared_driver` starts it (``python -m helpers.spark_server``) and stops it; the process reads its settings
as one JSON line on stdin, prints the URL on stdout when it is ready and stops Spark when stdin closes (the
runner ended, or was killed). Its console (Spark's ERROR lines and Java's own) is the runner's stderr.
"""
from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import selectors
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from helpers import engine
from helpers.config import EngineConfig

PLUGIN = "org.apache.spark.sql.connect.SparkConnectPlugin"
START_SECONDS = 180  # a driver not ready by then is reported as not starting


class SparkDriverFailed(RuntimeError):
    """The shared Spark driver did not start: the message says why and where Spark's reason is."""


@contextlib.contextmanager
def shared_driver(engine_cfg: EngineConfig, log_file: Path | None = None) -> Iterator[str]:
    """While the block runs, a Spark Connect server on ``engine_cfg.spark_master`` with the config's settings
    (:func:`helpers.engine.spark_settings`), logging to `log_file` (the month's spark.log); yields its URL.
    Raises :class:`SparkDriverFailed` if pyspark is missing or the driver does not start within
    :data:`START_SECONDS`."""
    if importlib.util.find_spec("pyspark") is None:
        raise SparkDriverFailed("engine.backend is spark but pyspark is not installed in this environment: "
                                "`make spark-setup` installs it (requirements-spark.lock) and Java 17")
    env = dict(os.environ)
    if engine_cfg.spark_master.startswith("local"):  # the executors' Python, as engine.connect sets it
        env.setdefault("PYSPARK_PYTHON", sys.executable)
    if log_file is not None:
        env[engine.SPARK_LOG_VARIABLE] = str(log_file)
    env.pop(engine.REMOTE_VARIABLE, None)
    settings = {"engine": engine_cfg.model_dump(mode="json"), "port": _free_port()}
    # in a session of its own, as the kernels are: a Ctrl-C reaches the runner, which stops the run and then this
    process = subprocess.Popen([sys.executable, "-m", "helpers.spark_server"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        process.stdin.write(json.dumps(settings) + "\n")
        process.stdin.flush()
        yield _ready_url(process)
    finally:
        with contextlib.suppress(OSError):
            process.stdin.close()  # the server stops Spark and ends
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _ready_url(process: subprocess.Popen) -> str:
    """The URL the server prints once Spark is up, or :class:`SparkDriverFailed`."""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + START_SECONDS
        while (left := deadline - time.monotonic()) > 0:
            if selector.select(timeout=left):
                line = process.stdout.readline()
                if line.startswith("sc://"):
                    return line.strip()
                if not line:  # the server is ending: its output closed
                    break
    try:
        code = process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        code = None
    raise SparkDriverFailed(
        f"the shared Spark driver (engine.spark_shared_driver) did not start: "
        f"{'it ended with code ' + str(code) if code is not None else f'not ready after {START_SECONDS} s'}; "
        "Spark's reason is on the console above and in spark.log; engine.spark_shared_driver: false starts a driver "
        "in each notebook instead")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def main() -> None:
    """The server process: read the settings line, start Spark with the Connect plugin, print the URL, wait for
    stdin to close, stop Spark."""
    settings = json.loads(sys.stdin.readline())
    engine_cfg = EngineConfig(**settings["engine"])
    # The URL goes to the runner on this process's stdout, a pipe it stops reading then; everything else printed
    # (Spark's JVM and its Python workers, started from here, included) goes to the console, so no full pipe ever
    # blocks them.
    ready = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master(engine_cfg.spark_master).appName("retention")
    conf = {**engine.spark_settings(engine_cfg), "spark.plugins": PLUGIN,
            "spark.connect.grpc.binding.port": str(settings["port"])}
    for key, value in conf.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel(engine_cfg.spark_log_level)
    print(f"sc://localhost:{settings['port']}", file=ready, flush=True)
    ready.close()
    try:
        sys.stdin.read()  # until the runner closes it or ends
    finally:
        _log_what_is_left(session)
        session.stop()


def _log_what_is_left(session) -> None:
    """A warning in spark.log when the month's notebooks left cached tables in the driver's memory (each kernel
    releases its own when it ends: helpers.engine)."""
    left = session.sparkContext._jsc.getPersistentRDDs().size()
    if left:
        session.sparkContext._jvm.org.apache.logging.log4j.LogManager.getLogger("retention").warn(
            f"{left} cached table(s) were left in the shared driver's memory by the month's notebooks")


if __name__ == "__main__":
    main()
