"""TLS on both hops, tested with real clients: Python grpcio with
ssl_channel_credentials, grpcurl -cacert/-cert/-key, grpc-health-probe -tls,
curl --cacert; mTLS refuses a client without a certificate; certificates are
re-read when their files change, for new connections, without dropping open
ones. Certificates are made here with the openssl command."""
import json
import os
import shutil
import socket
import ssl
import subprocess
import time

import grpc
import pytest
import requests

from conftest import BIN, CREDENTIALS, TOKEN_A, Process, free_port, wait_port

GOBIN = os.path.expanduser("~/go/bin")


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2", "-subj", f"/CN={name}",
            cwd=d)


def make_leaf(d, ca, name, cn, client=False, serial="01"):
    ext = os.path.join(d, f"{name}.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:localhost,DNS:events-service,IP:127.0.0.1\n")
        f.write(f"extendedKeyUsage={'clientAuth' if client else 'serverAuth'}\n")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}", cwd=d)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
            "-set_serial", serial, "-days", "2", "-extfile", ext, "-out", f"{name}.crt", cwd=d)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("pki"))
    make_ca(d, "ca")
    make_ca(d, "other-ca")
    make_leaf(d, "ca", "server", "events-service", serial="0x1001")
    make_leaf(d, "ca", "server2", "events-service", serial="0x2002")
    make_leaf(d, "ca", "client", "events-gateway", client=True)
    make_leaf(d, "other-ca", "stranger", "stranger", client=True)
    return d


def read(path):
    with open(path, "rb") as f:
        return f.read()


def base_env():
    return {k: v for k, v in os.environ.items() if not k.startswith("EVENTS_")}


@pytest.fixture(scope="module")
def mtls_stack(pki, tmp_path_factory):
    """Service with mTLS; gateway serving HTTPS and dialing the service over
    mTLS. The serving certificate files are copies the tests may replace."""
    d = str(tmp_path_factory.mktemp("mtls"))
    creds = os.path.join(d, "credentials")
    with open(creds, "w") as f:
        f.write(CREDENTIALS)
    for name in ("server.crt", "server.key"):
        shutil.copy(os.path.join(pki, name), os.path.join(d, name))
    grpc_port, http_port = free_port(), free_port()
    env = base_env()
    env.update({"EVENTS_GRPC_ADDR": f"127.0.0.1:{grpc_port}", "EVENTS_CREDENTIALS": creds,
                "EVENTS_STORE": "sqlite:" + os.path.join(d, "tls.db"),
                "EVENTS_TLS_CERT": os.path.join(d, "server.crt"),
                "EVENTS_TLS_KEY": os.path.join(d, "server.key"),
                "EVENTS_TLS_CLIENT_CA": os.path.join(pki, "ca.crt")})
    svc = Process([os.path.join(BIN, "events-service")], env, os.path.join(d, "service.log"))
    wait_port(grpc_port, svc.proc)
    genv = base_env()
    genv.update({"EVENTS_HTTP_ADDR": f"127.0.0.1:{http_port}",
                 "EVENTS_GRPC_TARGET": f"127.0.0.1:{grpc_port}",
                 "EVENTS_HTTP_TLS_CERT": os.path.join(d, "server.crt"),
                 "EVENTS_HTTP_TLS_KEY": os.path.join(d, "server.key"),
                 "EVENTS_GRPC_TLS_CA": os.path.join(pki, "ca.crt"),
                 "EVENTS_GRPC_TLS_CERT": os.path.join(pki, "client.crt"),
                 "EVENTS_GRPC_TLS_KEY": os.path.join(pki, "client.key"),
                 "EVENTS_GRPC_TLS_SERVER_NAME": "events-service"})
    gw = Process([os.path.join(BIN, "events-gateway")], genv, os.path.join(d, "gateway.log"))
    wait_port(http_port, gw.proc)
    yield {"dir": d, "grpc": grpc_port, "http": http_port, "svc": svc, "gw": gw}
    assert gw.stop() == 0, gw.output()
    assert svc.stop() == 0, svc.output()


def channel_creds(pki, client="client"):
    return grpc.ssl_channel_credentials(
        root_certificates=read(os.path.join(pki, "ca.crt")),
        private_key=read(os.path.join(pki, f"{client}.key")) if client else None,
        certificate_chain=read(os.path.join(pki, f"{client}.crt")) if client else None)


def health(target, creds):
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    opts = [("grpc.ssl_target_name_override", "events-service")]
    with grpc.secure_channel(target, creds, options=opts) as ch:
        return health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)


def test_grpcio_with_client_certificate(mtls_stack, pki):
    r = health(f"127.0.0.1:{mtls_stack['grpc']}", channel_creds(pki))
    assert r.status == 1  # SERVING


@pytest.mark.parametrize("client", [None, "stranger"])
def test_mtls_refuses_clients_without_a_trusted_certificate(mtls_stack, pki, client):
    with pytest.raises(grpc.RpcError) as e:
        health(f"127.0.0.1:{mtls_stack['grpc']}", channel_creds(pki, client))
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE


def test_plaintext_client_is_refused(mtls_stack):
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    with grpc.insecure_channel(f"127.0.0.1:{mtls_stack['grpc']}") as ch:
        with pytest.raises(grpc.RpcError):
            health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=3)


def test_grpcurl_with_cacert_cert_key(mtls_stack, pki):
    p = subprocess.run(
        [os.path.join(GOBIN, "grpcurl"), "-cacert", os.path.join(pki, "ca.crt"),
         "-cert", os.path.join(pki, "client.crt"), "-key", os.path.join(pki, "client.key"),
         "-servername", "events-service", "-H", f"authorization: Bearer {TOKEN_A}",
         "-d", '{"page_size":1}', f"127.0.0.1:{mtls_stack['grpc']}",
         "events.customer.v1.CustomerEventService/ListEvents"],
        capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr.decode()
    json.loads(p.stdout)


def test_grpc_health_probe_tls(mtls_stack, pki):
    probe = os.path.join(GOBIN, "grpc-health-probe")
    assert os.path.exists(probe), "scripts/deps.sh installs grpc-health-probe"
    args = [probe, "-addr", f"127.0.0.1:{mtls_stack['grpc']}", "-tls",
            "-tls-ca-cert", os.path.join(pki, "ca.crt"),
            "-tls-server-name", "events-service"]
    ok = subprocess.run(args + ["-tls-client-cert", os.path.join(pki, "client.crt"),
                                "-tls-client-key", os.path.join(pki, "client.key")],
                        capture_output=True, timeout=30)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    refused = subprocess.run(args, capture_output=True, timeout=30)
    assert refused.returncode != 0


def test_https_gateway_over_mtls_hop(mtls_stack, pki):
    base = f"https://localhost:{mtls_stack['http']}"
    ca = os.path.join(pki, "ca.crt")
    r = requests.get(base + "/readyz", verify=ca, timeout=10)
    assert r.status_code == 200, r.text
    r = requests.post(base + "/v1/objects/meetings/events", verify=ca, timeout=10,
                      headers={"Authorization": f"Bearer {TOKEN_A}"},
                      json={"name": "tls", "source": "manual", "record_id": "r1",
                            "start_at": "2025-01-06T09:00:00Z", "end_at": "2025-01-06T10:00:00Z"})
    assert r.status_code == 200, r.text
    p = subprocess.run(["curl", "-sS", "--cacert", ca, base + "/healthz"], capture_output=True,
                       timeout=30)
    assert p.returncode == 0 and json.loads(p.stdout) == {"status": "ok"}
    # No plaintext on the HTTPS port.
    with pytest.raises(requests.exceptions.RequestException):
        requests.get(f"http://127.0.0.1:{mtls_stack['http']}/healthz", timeout=3)


def peer_serial(port):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        with ctx.wrap_socket(s) as t:
            der = t.getpeercert(binary_form=True)
    p = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-serial"], input=der,
                       capture_output=True, timeout=10)
    return p.stdout.decode().strip().split("=")[1]


def test_certificates_rotate_without_restart(mtls_stack, pki):
    """Both listeners pick up a replaced certificate for new connections
    while an open HTTPS keep-alive connection keeps working."""
    d = mtls_stack["dir"]
    assert peer_serial(mtls_stack["http"]) == "1001"
    assert peer_serial(mtls_stack["grpc"]) == "1001"
    ca = os.path.join(pki, "ca.crt")
    session = requests.Session()
    base = f"https://localhost:{mtls_stack['http']}"
    assert session.get(base + "/healthz", verify=ca, timeout=5).status_code == 200
    for ext in ("key", "crt"):  # write aside, then rename: what a Secret swap does
        tmp = os.path.join(d, f"server.{ext}.tmp")
        shutil.copy(os.path.join(pki, f"server2.{ext}"), tmp)
        os.replace(tmp, os.path.join(d, f"server.{ext}"))
    deadline = time.time() + 15
    while time.time() < deadline:
        if peer_serial(mtls_stack["http"]) == "2002" and peer_serial(mtls_stack["grpc"]) == "2002":
            break
        time.sleep(0.5)
    assert peer_serial(mtls_stack["http"]) == "2002"
    assert peer_serial(mtls_stack["grpc"]) == "2002"
    # The connection opened before the swap still answers.
    assert session.get(base + "/healthz", verify=ca, timeout=5).status_code == 200
    assert health(f"127.0.0.1:{mtls_stack['grpc']}", channel_creds(pki)).status == 1


@pytest.mark.parametrize("var,value,expect", [
    ("EVENTS_TLS_CERT", "server.crt", "EVENTS_TLS_KEY"),      # cert without key
    ("EVENTS_TLS_CLIENT_CA", "server.key", "EVENTS_TLS_CLIENT_CA"),  # not a certificate
])
def test_bad_tls_settings_stop_start_up(pki, tmp_path, var, value, expect):
    env = base_env()
    env.update({"EVENTS_CREDENTIALS": "/nonexistent", var: os.path.join(pki, value)})
    p = subprocess.run([os.path.join(BIN, "events-service")], env=env, capture_output=True,
                       timeout=20)
    assert p.returncode == 2
    line = json.loads(p.stderr.decode().splitlines()[0])
    assert line["variable"] == expect


def test_mismatched_key_is_refused(pki):
    env = base_env()
    env.update({"EVENTS_CREDENTIALS": "/nonexistent",
                "EVENTS_TLS_CERT": os.path.join(pki, "server.crt"),
                "EVENTS_TLS_KEY": os.path.join(pki, "client.key")})
    p = subprocess.run([os.path.join(BIN, "events-service")], env=env, capture_output=True,
                       timeout=20)
    assert p.returncode == 2 and "does not match" in p.stderr.decode()
