"""Strict configuration: every setting is parsed completely; a bad value
stops start-up with exit status 2 and one JSON log line naming the setting;
an unknown EVENTS_* variable is warned about; durations take units."""
import json
import os
import subprocess

import pytest
import requests

from conftest import BIN, Process, free_port, wait_port


def run(binary, env_extra, args=(), timeout=20):
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTS_")}
    env.update(env_extra)
    p = subprocess.run([os.path.join(BIN, binary), *args], env=env, capture_output=True,
                       timeout=timeout)
    lines = [json.loads(l) for l in p.stderr.decode().splitlines() if l.strip()]
    return p.returncode, lines


@pytest.mark.parametrize("binary,var,value", [
    ("events-gateway", "EVENTS_RPC_TIMEOUT_MS", "10x"),
    ("events-gateway", "EVENTS_RPC_TIMEOUT_MS", "-1"),
    ("events-gateway", "EVENTS_MAX_CONNECTIONS", "many"),
    ("events-gateway", "EVENTS_IDLE_TIMEOUT_S", "30 s"),
    ("events-gateway", "EVENTS_HTTP_ADDR", "127.0.0.1:http"),
    ("events-gateway", "EVENTS_LOG_LEVEL", "verbose"),
    ("events-service", "EVENTS_WORKERS", "0"),
    ("events-service", "EVENTS_WORKERS", "8k"),
    ("events-service", "EVENTS_GRACE_MS", "soon"),
    ("events-service", "EVENTS_METRICS_ADDR", "nowhere"),
])
def test_bad_value_exits_2_naming_the_setting(binary, var, value):
    rc, lines = run(binary, {var: value, "EVENTS_CREDENTIALS": "/nonexistent"})
    assert rc == 2
    assert len(lines) == 1 and lines[0]["level"] == "error", lines
    assert lines[0]["variable"] == var
    assert value.strip() in lines[0]["error"] or "between" in lines[0]["error"]


def test_bad_flag_exits_2():
    rc, lines = run("events-gateway", {}, ["--rpc-timeout-ms=2parsecs"])
    assert rc == 2 and lines[0]["variable"] == "EVENTS_RPC_TIMEOUT_MS"
    rc, lines = run("events-gateway", {}, ["--no-such-flag=1"])
    assert rc == 2 and "no-such-flag" in lines[0]["error"]


def test_units_and_unknown_variables(workdir, tmp_path):
    """A duration with a unit is taken in that unit (1s is 1000 ms, not 1 ms):
    the gateway serves with EVENTS_RPC_TIMEOUT_MS=2s, and an unknown
    EVENTS_ variable is named in a warning."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTS_")}
    env.update({"EVENTS_HTTP_ADDR": f"127.0.0.1:{port}", "EVENTS_RPC_TIMEOUT_MS": "2s",
                "EVENTS_IDLE_TIMEOUT_S": "1m", "EVENTS_GRPC_TARGET": "127.0.0.1:1",
                "EVENTS_RPC_TIMOUT_MS": "5000"})
    p = Process([os.path.join(BIN, "events-gateway")], env, str(tmp_path / "gw.log"))
    try:
        wait_port(port, p.proc)
        r = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        assert r.status_code == 200
    finally:
        assert p.stop() == 0
    lines = [json.loads(l) for l in p.output().splitlines() if l.strip()]
    warned = [l for l in lines if l.get("variable") == "EVENTS_RPC_TIMOUT_MS"]
    assert warned and warned[0]["level"] == "warn"


@pytest.mark.parametrize("threads", ["0", "1", "2", "3"])
def test_http_threads_serve_and_log_only_json(tmp_path, threads):
    """Any event-loop count serves, and the gateway's stderr stays JSON lines:
    libmicrohttpd warns in plain text about a pool of one thread unless the
    gateway's logger is in place first and a pool of one is never asked for."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTS_")}
    env.update({"EVENTS_HTTP_ADDR": f"127.0.0.1:{port}", "EVENTS_GRPC_TARGET": "127.0.0.1:1",
                "EVENTS_HTTP_THREADS": threads, "EVENTS_LOG_LEVEL": "debug"})
    p = Process([os.path.join(BIN, "events-gateway")], env, str(tmp_path / "gw.log"))
    try:
        wait_port(port, p.proc)
        for _ in range(4):
            assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    finally:
        assert p.stop() == 0
    for line in p.output().splitlines():
        if line.strip():
            assert isinstance(json.loads(line), dict), line
