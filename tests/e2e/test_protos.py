"""The protos as a contract other toolchains accept: buf lint (STANDARD),
protoc-gen-go and grpcio-tools without extra flags, the annotations served by
reflection, and uniqueness conflicts as ALREADY_EXISTS."""
import glob
import os
import shutil
import subprocess

import grpc
import pytest

from conftest import ROOT, TOKEN_A

PROTO = os.path.join(ROOT, "proto")
BUF_CONFIG = "version: v2\nlint:\n  use: [STANDARD]\n"


def googleapis():
    import google.api
    return os.path.dirname(os.path.dirname(google.api.__path__[0]))


def event_protos(root=PROTO):
    return sorted(os.path.relpath(p, root) for p in glob.glob(os.path.join(root, "events/**/*.proto"),
                                                              recursive=True))


def protoc(root, *args):
    r = subprocess.run(["protoc", f"-I{root}", "-I/usr/include", f"-I{googleapis()}", *args],
                       capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout + r.stderr


def buf_lint(root, tmp_path):
    """buf lint over an image protoc builds (the googleapis imports come from
    the venv, not from the network), limited to the events/ files."""
    image = tmp_path / "image.binpb"
    rc, out = protoc(root, "--include_imports", "--include_source_info",
                     f"--descriptor_set_out={image}", *event_protos(root))
    assert rc == 0, out
    (tmp_path / "buf.yaml").write_text(BUF_CONFIG)
    r = subprocess.run(["buf", "lint", str(image), "--config", str(tmp_path / "buf.yaml"),
                        "--path", "events"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    return r.returncode, r.stdout + r.stderr


def test_buf_lint_standard_is_clean(tmp_path):
    rc, out = buf_lint(PROTO, tmp_path)
    assert rc == 0 and out.strip() == "", out


def test_buf_lint_would_catch_a_shared_request(tmp_path):
    """The check can fail: one request message used by two RPCs is reported."""
    copy = tmp_path / "proto"
    shutil.copytree(os.path.join(PROTO, "events"), copy / "events")
    p = copy / "events/activity/v1/activity.proto"
    src = p.read_text().replace("rpc DeleteEvent(DeleteEventRequest)", "rpc DeleteEvent(GetEventRequest)")
    p.write_text(src)
    rc, out = buf_lint(str(copy), tmp_path)
    assert rc != 0 and "GetEventRequest" in out, out


def test_protoc_gen_go_generates_without_flags(tmp_path):
    rc, out = protoc(PROTO, f"--go_out={tmp_path}", *event_protos())
    assert rc == 0, out
    generated = {os.path.basename(p) for p in glob.glob(str(tmp_path / "**/*.pb.go"), recursive=True)}
    assert generated == {"options.pb.go", "activity.pb.go", "customer.pb.go", "catalog.pb.go",
                         "object.pb.go"}


def test_grpcio_tools_generates_without_flags(tmp_path):
    from grpc_tools import protoc as gp
    import grpc_tools
    wkt = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    rc = gp.main(["protoc", f"-I{PROTO}", f"-I{wkt}", f"-I{googleapis()}", f"--python_out={tmp_path}",
                  f"--grpc_python_out={tmp_path}"] + event_protos())
    assert rc == 0
    assert (tmp_path / "events/catalog/v1/catalog_pb2_grpc.py").exists()


def test_every_file_names_its_packages_for_other_languages():
    for rel in event_protos():
        src = open(os.path.join(PROTO, rel)).read()
        for option in ("go_package", "java_package", "java_multiple_files", "csharp_namespace"):
            assert f"option {option} =" in src, (rel, option)


def test_reflection_serves_the_annotations(sqlite_stack):
    r = subprocess.run(["grpcurl", "-plaintext", sqlite_stack.grpc_target, "describe",
                        "events.activity.v1.ActivityEventService.GetEvent"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "google.api.http" in r.stdout and "/api/v2/events/{id}" in r.stdout, r.stdout
    r = subprocess.run(["grpcurl", "-plaintext", sqlite_stack.grpc_target, "describe",
                        "events.activity.v1.Event"], capture_output=True, text=True, timeout=30)
    assert "OUTPUT_ONLY" in r.stdout and "max_chars" in r.stdout, r.stdout


def test_uniqueness_conflict_is_already_exists(stack, pb):
    m = pb("events/customer/v1/customer")
    call = stack.channel.unary_unary("/events.customer.v1.CustomerEventService/CreateEvent",
                                     request_serializer=lambda x: x.SerializeToString(),
                                     response_deserializer=m.CreateEventResponse.FromString)
    md = [("authorization", f"Bearer {TOKEN_A}")]
    ev = m.Event(event_type_id="t", customer_id="c", external_id="dup-" + os.urandom(6).hex())
    call(m.CreateEventRequest(event=ev), timeout=10, metadata=md)
    with pytest.raises(grpc.RpcError) as e:
        call(m.CreateEventRequest(event=ev), timeout=10, metadata=md)
    assert e.value.code() == grpc.StatusCode.ALREADY_EXISTS, e.value.details()
