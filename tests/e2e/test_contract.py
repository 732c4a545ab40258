"""Contract fuzzing: schemathesis against the gateway's own /openapi.json.

Every documented operation gets generated requests, valid and invalid
(--data-generation-method all), with tenant A's credential. The checks
(--checks all but negative_data_rejection, see below): no 5xx, status
codes, content types, headers and bodies as the document declares them,
and credentials not ignored. Bounded by EVENTS_CONTRACT_EXAMPLES (examples per operation,
default 15) and repeatable with EVENTS_CONTRACT_SEED (default 1); the stack
fixture then checks both processes still run and stop with status 0.

By hand, against a running gateway:
    .venv/bin/st run http://127.0.0.1:8080/openapi.json --checks all \\
        --exclude-checks negative_data_rejection --data-generation-method all -H "Authorization: Bearer $TOKEN" \\
        --hypothesis-max-examples 50
"""
import os
import subprocess

from conftest import ROOT, TOKEN_A

ST = os.path.join(os.environ.get("EVENTS_VENV", os.path.join(ROOT, ".venv")), "bin", "st")


def test_openapi_contract(stack, tmp_path):
    examples = os.environ.get("EVENTS_CONTRACT_EXAMPLES", "15")
    seed = os.environ.get("EVENTS_CONTRACT_SEED", "1")
    # negative_data_rejection is left out: schemathesis 3.39 counts an
    # invalid value whose query-string form is valid ("false" for a boolean
    # it generated as some other type) as accepted negative data, which made
    # the run depend on the data. Invalid input still runs under every other
    # check (no 5xx, documented statuses and bodies).
    argv = [ST, "run", stack.base + "/openapi.json", "--checks", "all",
            "--exclude-checks", "negative_data_rejection",
            "--data-generation-method", "all", "-H", f"Authorization: Bearer {TOKEN_A}",
            "--hypothesis-max-examples", examples, "--hypothesis-seed", seed,
            "--hypothesis-database", "none", "--request-timeout", "20000", "--no-color",
            "--validate-schema", "true"]
    r = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=900,
                       env=dict(os.environ, SCHEMATHESIS_TELEMETRY="false"))
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-20000:]
    assert "Collected API operations: " in out
    # Both processes survived everything that was sent.
    assert stack.gateway.proc.poll() is None and stack.service.proc.poll() is None
    assert stack.http.get(stack.base + "/readyz", timeout=10).status_code == 200
