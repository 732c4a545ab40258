"""Credential rotation: the service re-reads its credentials file when it
changes on disk (a Kubernetes Secret update swaps the ..data symlink) and on
SIGHUP; a valid new set takes effect for new calls within seconds, an
invalid one is refused with its file:line and the previous set stays in
force; the log and /metrics say which generation is live."""
import json
import os
import signal
import time

import grpc
import pytest
import requests

from conftest import BIN, Process, free_port, wait_port

OLD = "sk:rotation-old"
NEW = "sk:rotation-new"


def secret_dir(root, name, text):
    """Writes text the way the kubelet does: a timestamped directory, the
    ..data symlink swapped atomically, the file a symlink through it."""
    d = os.path.join(root, f"..{name}")
    os.makedirs(d)
    with open(os.path.join(d, "credentials"), "w") as f:
        f.write(text)
    tmp = os.path.join(root, "..data_tmp")
    os.symlink(os.path.basename(d), tmp)
    os.replace(tmp, os.path.join(root, "..data"))
    link = os.path.join(root, "credentials")
    if not os.path.islink(link):
        os.symlink(os.path.join("..data", "credentials"), link)
    return link


def health_code(channel, pb, token):
    stub_mod = pb("events/customer/v1/customer")
    import importlib
    grpc_mod = importlib.import_module("events.customer.v1.customer_pb2_grpc")
    stub = grpc_mod.CustomerEventServiceStub(channel)
    try:
        stub.ListEvents(stub_mod.ListEventsRequest(page_size=1),
                        metadata=[("authorization", f"Bearer {token}")], timeout=5)
        return grpc.StatusCode.OK
    except grpc.RpcError as e:
        return e.code()


def wait_for(pred, timeout=8.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


def generation(metrics_port):
    text = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith("events_credentials_generation "):
            return float(line.split()[1])
    return None


@pytest.fixture
def service(tmp_path):
    root = tmp_path / "secret"
    root.mkdir()
    path = secret_dir(str(root), "2026_01", f"acme bearer {OLD}\n")
    port, mport = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTS_")}
    env.update({"EVENTS_GRPC_ADDR": f"127.0.0.1:{port}", "EVENTS_CREDENTIALS": path,
                "EVENTS_STORE": "sqlite:" + str(tmp_path / "rot.db"),
                "EVENTS_METRICS_ADDR": f"127.0.0.1:{mport}"})
    p = Process([os.path.join(BIN, "events-service")], env, str(tmp_path / "service.log"))
    wait_port(port, p.proc)
    ch = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield p, ch, str(root), path, mport
    ch.close()
    assert p.stop() == 0


def test_symlink_swap_takes_effect_and_bad_file_keeps_previous(service, pb):
    p, ch, root, path, mport = service
    assert health_code(ch, pb, OLD) == grpc.StatusCode.OK
    assert health_code(ch, pb, NEW) == grpc.StatusCode.UNAUTHENTICATED
    assert generation(mport) == 1

    secret_dir(root, "2026_02", f"acme bearer {NEW}\n")
    assert wait_for(lambda: health_code(ch, pb, NEW) == grpc.StatusCode.OK)
    assert health_code(ch, pb, OLD) == grpc.StatusCode.UNAUTHENTICATED
    assert generation(mport) == 2

    # A broken file is refused with file:line; the previous set stays.
    secret_dir(root, "2026_03", f"acme bearer {OLD}\nacme telepathy sk:x\n")
    assert wait_for(lambda: "telepathy" in p.output())
    assert health_code(ch, pb, NEW) == grpc.StatusCode.OK
    assert health_code(ch, pb, OLD) == grpc.StatusCode.UNAUTHENTICATED
    assert generation(mport) == 2
    lines = [json.loads(l) for l in p.output().splitlines() if l.strip()]
    refused = [l for l in lines if "refused" in l["msg"]]
    assert refused and ":2" in refused[0]["error"] and refused[0]["generation"] == 2
    loaded = [l for l in lines if l["msg"] == "credentials loaded"]
    assert loaded and loaded[-1]["generation"] == 2


def test_sighup_rereads(service, pb, tmp_path):
    p, ch, root, path, mport = service
    # Rewritten in place with identical size and a restored mtime: only
    # SIGHUP can tell, which is what operators use it for.
    real = os.path.realpath(path)
    st = os.stat(real)
    with open(real, "w") as f:
        f.write(f"acme bearer {NEW[:-3]}xyz\n".replace("xyz", NEW[-3:]))
    os.utime(real, ns=(st.st_atime_ns, st.st_mtime_ns))
    p.proc.send_signal(signal.SIGHUP)
    assert wait_for(lambda: health_code(ch, pb, NEW) == grpc.StatusCode.OK, timeout=5)
    assert generation(mport) == 2
