"""bench/customer_pb.py - the customer API's Python messages for the bench's
gRPC clients, generated from proto/ into a temporary directory at import
(grpcio-tools, and googleapis-common-protos for google/api)."""
import os
import subprocess
import sys
import tempfile

import google.api  # googleapis-common-protos: google/api/*.proto
import grpc_tools

_root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
_out = tempfile.mkdtemp(prefix="bench-pb-")
_googleapis = os.path.dirname(os.path.dirname(google.api.__path__[0]))
subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{_root}/proto",
                f"-I{os.path.join(os.path.dirname(grpc_tools.__file__), '_proto')}", f"-I{_googleapis}",
                f"--python_out={_out}", "events/customer/v1/customer.proto", "events/api/v1/options.proto"],
               check=True)
sys.path.insert(0, _out)
from events.customer.v1 import customer_pb2  # noqa: E402,F401
