"""bench/watch.py - change feed delivery latency: W watchers on
CustomerEventService/WatchEvents, one writer creating events one at a time;
for each create, the time from its acknowledgement (the commit) to its
receipt by each watcher. Prints "key<TAB>value" lines (p50, p99 in ms, the
number of samples) for run.sh's results.

    python bench/watch.py ADDR TOKEN WATCHERS CREATES PREFIX
"""
import statistics
import sys
import threading
import time

import grpc

addr, token, n_watch, n_create, prefix = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
from customer_pb import customer_pb2 as m  # noqa: E402

md = (("authorization", f"Bearer {token}"),)
ch = grpc.insecure_channel(addr)
create = ch.unary_unary("/events.customer.v1.CustomerEventService/CreateEvent",
                        request_serializer=m.CreateEventRequest.SerializeToString,
                        response_deserializer=m.CreateEventResponse.FromString)
watch = ch.unary_stream("/events.customer.v1.CustomerEventService/WatchEvents",
                        request_serializer=m.WatchEventsRequest.SerializeToString,
                        response_deserializer=m.WatchEventsResponse.FromString)
acked = {}  # event_id -> monotonic ack time
receipts = []  # (event_id, monotonic receipt time), every watcher's
lat = []
lock = threading.Lock()
streams = [watch(m.WatchEventsRequest(), metadata=md, timeout=600) for _ in range(n_watch)]
done = threading.Barrier(n_watch + 1)


def reader(s):
    got = 0
    for msg in s:
        t = time.monotonic()
        with lock:
            receipts.append((msg.event.event_id, t))
        got += 1
        if got == n_create:
            break
    done.wait()


threads = [threading.Thread(target=reader, args=(s,), daemon=True) for s in streams]
for t in threads:
    t.start()
time.sleep(1.0)  # every stream open ("now" is when it opened)
for i in range(n_create):
    req = m.CreateEventRequest(event=m.Event(event_type_id="bench-watch", customer_id="c",
                                             external_id=f"{prefix}-{i}-{time.time_ns()}"))
    r = create.future(req, metadata=md, timeout=30)
    eid = r.result().event_id
    acked[eid] = time.monotonic()
    time.sleep(0.02)
try:
    done.wait(timeout=120)
except threading.BrokenBarrierError:
    pass
# A receipt may even precede the writer's view of the ack (both follow the
# commit): such samples count as 0.
lat = sorted(max(0.0, (t - acked[e]) * 1000) for e, t in receipts if e in acked)
print(f"{prefix}.p50\t{statistics.median(lat):.3f}" if lat else f"{prefix}.p50\t")
print(f"{prefix}.p99\t{lat[min(len(lat) - 1, int(len(lat) * 0.99))]:.3f}" if lat else f"{prefix}.p99\t")
print(f"{prefix}.samples\t{len(lat)}")
for s in streams:
    s.cancel()
