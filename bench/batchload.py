"""bench/batchload.py - the load generator of section 7 (bulk vs single
create): one call in flight (c=1) for a number of seconds, each call a
request serialised once before the load and stamped with its call number in
place (a fixed-width field, so no length prefix changes). ghz, used before,
spent about 60 ms of CPU per 500-item call rendering its JSON template,
which on a shared 2-core machine is time taken from the service; here a call
costs the client a bytes.replace.

    python bench/batchload.py ADDR TOKEN single|batch SIZE SECONDS LOAD JSON

JSON is one CreateEventRequest (as run.sh's CREATE_DATA, PREFIX and
{{.RequestNumber}} already replaced or not: the external_id is rewritten).
A batch holds SIZE copies, each with its own external_id. Prints
"LOAD.key<TAB>value" lines as run.sh's ghz_parse does (n, ok, rps = calls/s,
p50, p99 in ms) plus LOAD.cpu.client (the client's CPU ticks during the load,
at 100 per second as run.sh counts them). SECONDS 0 sends one call (a check).
"""
import os
import sys
import time

import grpc

addr, token, kind, size, seconds, load, tmpl = (sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]),
                                                 float(sys.argv[5]), sys.argv[6], sys.argv[7])
from google.protobuf import json_format  # noqa: E402
from customer_pb import customer_pb2 as m  # noqa: E402

# The call number goes where STAMP is; each item of a batch has its index.
STAMP = "C" * 10
tag = f"{load}-{os.getpid()}-{time.time_ns() % 10**9}"
one = json_format.Parse(tmpl, m.CreateEventRequest())
if kind == "batch":
    req = m.BatchCreateEventsRequest()
    for k in range(size):
        item = req.requests.add()
        item.CopyFrom(one)
        item.event.external_id = f"{tag}-{STAMP}-{k:04d}"
    method = "/events.customer.v1.CustomerEventService/BatchCreateEvents"
    parse = m.BatchCreateEventsResponse.FromString
else:
    one.event.external_id = f"{tag}-{STAMP}"
    req = one
    method = "/events.customer.v1.CustomerEventService/CreateEvent"
    parse = m.CreateEventResponse.FromString
template = req.SerializeToString()
assert template.count(STAMP.encode()) == (size if kind == "batch" else 1)

ch = grpc.insecure_channel(addr)
call = ch.unary_unary(method)  # bytes in, bytes out: no serialisation per call
md = (("authorization", f"Bearer {token}"),)


def send(n):
    body = template.replace(STAMP.encode(), b"%010d" % n)
    t0 = time.perf_counter()
    try:
        reply = call(body, metadata=md, timeout=60)
    except grpc.RpcError as e:
        return time.perf_counter() - t0, False, e.code()
    return time.perf_counter() - t0, True, reply


# One call first: the channel is connected and the reply is what we expect.
_, ok, reply = send(0)
if not ok:
    sys.exit(f"{load}: first call failed: {reply}")
if kind == "batch":
    r = parse(reply)
    bad = [x for x in r.results if x.WhichOneof("result") != "event"]
    if len(r.results) != size or bad:
        sys.exit(f"{load}: batch not fully created: {len(bad)} of {len(r.results)} failed")
lat, n, good = [], 0, 0
cpu0, t_start = time.process_time(), time.perf_counter()
while seconds > 0 and time.perf_counter() - t_start < seconds:
    n += 1
    dt, ok, _ = send(n)
    lat.append(dt * 1000)
    good += ok
wall = time.perf_counter() - t_start
cpu = time.process_time() - cpu0
lat.sort()
print(f"{load}.n\t{n}")
print(f"{load}.ok\t{good}")
print(f"{load}.rps\t{good / wall if wall > 0 else 0}")
print(f"{load}.p50\t{lat[len(lat) // 2] if lat else 0}")
print(f"{load}.p99\t{lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else 0}")
print(f"{load}.cpu.client\t{int(cpu * 100)}")
