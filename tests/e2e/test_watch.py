"""The change feed (Watch<Resource>s, server streaming) on both stores: every
create, update and delete of the caller's tenant, in commit order, with the
list's filters; resumable from a message's or a List response's token; an
expired token is OUT_OF_RANGE, a malformed one INVALID_ARGUMENT naming the
field; and under faults (the service SIGKILLed mid-stream and restarted,
writers running) each watcher that resumes from the last token it saw gets
every committed change exactly once, in order.
"""
import os
import queue
import threading
import time
import uuid

import grpc
import pytest

from conftest import TOKEN_A, TOKEN_B, Stack, _store_url, stop

A = (("authorization", f"Bearer {TOKEN_A}"),)
B = (("authorization", f"Bearer {TOKEN_B}"),)
CUSTOMER = "/events.customer.v1.CustomerEventService/"
ACTIVITY = "/events.activity.v1.ActivityEventService/"
CATALOG = "/events.catalog.v1.EventCatalogService/"
OBJECT = "/events.object.v1.ObjectEventService/"


def unary(channel, path, req, resp_cls, md=A):
    call = channel.unary_unary(path, request_serializer=req.SerializeToString,
                               response_deserializer=resp_cls.FromString)
    return call(req, metadata=md, timeout=15)


class Watcher:
    """One Watch stream read by a thread into a queue."""

    def __init__(self, channel, path, req, resp_cls, md=A):
        call = channel.unary_stream(path, request_serializer=req.SerializeToString,
                                    response_deserializer=resp_cls.FromString)
        self.stream = call(req, metadata=md, timeout=120)
        self.q = queue.Queue()
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            for m in self.stream:
                self.q.put(m)
        except grpc.RpcError as e:
            self.error = e
        self.q.put(None)

    def take(self, n, timeout=15):
        out = []
        deadline = time.time() + timeout
        while len(out) < n:
            m = self.q.get(timeout=max(0.1, deadline - time.time()))
            if m is None:
                raise AssertionError(f"stream ended after {len(out)}: {self.error}")
            out.append(m)
        return out

    def quiet(self, seconds=0.7):
        try:
            m = self.q.get(timeout=seconds)
        except queue.Empty:
            return True
        raise AssertionError(f"unexpected message {m}")

    def cancel(self):
        self.stream.cancel()
        self.thread.join(5)


def customer_event(pb, ext):
    m = pb("events/customer/v1/customer")
    return m.CreateEventRequest(event=m.Event(event_type_id="t1", customer_id="c1",
                                              external_id=ext))


def test_create_update_delete_in_order(stack, pb):
    m = pb("events/customer/v1/customer")
    fm = pb("google/protobuf/field_mask")
    wr = pb("google/protobuf/wrappers")
    w = Watcher(stack.channel, CUSTOMER + "WatchEvents", m.WatchEventsRequest(), m.WatchEventsResponse)
    time.sleep(0.3)  # "now" is when the stream opened
    ext = "w-" + uuid.uuid4().hex[:8]
    eid = unary(stack.channel, CUSTOMER + "CreateEvent", customer_event(pb, ext),
                m.CreateEventResponse).event_id
    ev = m.Event(event_id=eid, data=wr.StringValue(value='{"x":1}'))
    unary(stack.channel, CUSTOMER + "UpdateEvent",
          m.UpdateEventRequest(event=ev, update_mask=fm.FieldMask(paths=["data"])), m.UpdateEventResponse)
    unary(stack.channel, CUSTOMER + "DeleteEvent", m.DeleteEventRequest(event_id=eid), m.DeleteEventResponse)
    got = w.take(3)
    assert [g.type for g in got] == [m.CHANGE_TYPE_CREATED, m.CHANGE_TYPE_UPDATED, m.CHANGE_TYPE_DELETED]
    assert all(g.event.event_id == eid for g in got)
    assert got[0].event.external_id == ext
    assert got[1].event.data.value == '{"x":1}'
    assert len({g.resume_token for g in got}) == 3
    assert all(g.commit_time.seconds > 0 for g in got)
    assert got[0].commit_time.ToMicroseconds() <= got[2].commit_time.ToMicroseconds()
    w.cancel()


def test_batch_create_is_one_created_per_item_in_order(stack, pb):
    """A BatchCreate is logged item by item: one CREATED per written item, in
    request order; a refused item and an atomic batch that failed (its
    written items taken back on MongoDB) leave no change."""
    m = pb("events/customer/v1/customer")
    w = Watcher(stack.channel, CUSTOMER + "WatchEvents", m.WatchEventsRequest(), m.WatchEventsResponse)
    time.sleep(0.3)
    tag = uuid.uuid4().hex[:8]
    exts = [f"b{i}-{tag}" for i in range(6)]
    reqs = [customer_event(pb, e) for e in exts]
    reqs.insert(3, m.CreateEventRequest(event=m.Event(event_type_id="t1", customer_id="c1")))  # refused
    out = unary(stack.channel, CUSTOMER + "BatchCreateEvents",
                m.BatchCreateEventsRequest(requests=reqs, atomic=False), m.BatchCreateEventsResponse)
    assert [r.WhichOneof("result") for r in out.results] == ["event"] * 3 + ["status"] + ["event"] * 3
    got = w.take(len(exts))
    assert [g.type for g in got] == [m.CHANGE_TYPE_CREATED] * len(exts)
    assert [g.event.external_id for g in got] == exts
    assert [g.event.event_id for g in got] == [r.event.event_id for r in out.results if r.event.event_id]
    assert len({g.resume_token for g in got}) == len(exts)
    w.quiet()
    # Atomic, one item a duplicate of the first batch: nothing written, nothing seen.
    bad = [customer_event(pb, f"a{i}-{tag}") for i in range(3)] + [customer_event(pb, exts[0])]
    with pytest.raises(grpc.RpcError):
        unary(stack.channel, CUSTOMER + "BatchCreateEvents",
              m.BatchCreateEventsRequest(requests=bad, atomic=True), m.BatchCreateEventsResponse)
    w.quiet()
    # And the feed goes on after it: the next single create is the next message.
    eid = unary(stack.channel, CUSTOMER + "CreateEvent", customer_event(pb, "after-" + tag),
                m.CreateEventResponse).event_id
    nxt = w.take(1)[0]
    assert nxt.type == m.CHANGE_TYPE_CREATED and nxt.event.event_id == eid
    # Activity ids come from one block of the sequence: the feed has them in order.
    a = pb("events/activity/v1/activity")
    wa = Watcher(stack.channel, ACTIVITY + "WatchEvents", a.WatchEventsRequest(), a.WatchEventsResponse)
    time.sleep(0.3)
    names = [f"n{i}-{tag}" for i in range(5)]
    res = unary(stack.channel, ACTIVITY + "BatchCreateEvents", a.BatchCreateEventsRequest(
        requests=[a.CreateEventRequest(event=a.Event(name={"value": n})) for n in names]),
        a.BatchCreateEventsResponse)
    ids = [r.event.id for r in res.results]
    got = wa.take(len(names))
    assert [g.event.name.value for g in got] == names
    assert [g.event.id for g in got] == ids == sorted(ids)
    wa.quiet()
    wa.cancel()
    w.cancel()


def test_filters_and_tenancy(stack, pb):
    m = pb("events/activity/v1/activity")
    name = "keep-" + uuid.uuid4().hex[:6]
    flt = m.ListEventsRequest(name=m.StringFilter(values=[name]))
    wa = Watcher(stack.channel, ACTIVITY + "WatchEvents", m.WatchEventsRequest(filter=flt),
                 m.WatchEventsResponse)
    wb = Watcher(stack.channel, ACTIVITY + "WatchEvents", m.WatchEventsRequest(), m.WatchEventsResponse, md=B)
    time.sleep(0.3)
    for n in ("other", name, "other2"):
        unary(stack.channel, ACTIVITY + "CreateEvent", m.CreateEventRequest(event=m.Event(name={"value": n})),
              m.CreateEventResponse)
    got = wa.take(1)
    assert got[0].event.name.value == name and got[0].type == m.CHANGE_TYPE_CREATED
    wa.quiet()
    wb.quiet()  # tenant B sees nothing of tenant A
    unary(stack.channel, ACTIVITY + "CreateEvent", m.CreateEventRequest(event=m.Event(name={"value": name})),
          m.CreateEventResponse, md=B)
    assert wb.take(1)[0].event.name.value == name
    wa.quiet(0.3)
    wa.cancel()
    wb.cancel()


def test_list_token_then_resume(stack, pb):
    m = pb("events/object/v1/object")
    ts = pb("google/protobuf/timestamp")
    obj = "o" + uuid.uuid4().hex[:8]

    def create(rec):
        t0, t1 = ts.Timestamp(seconds=1735722000), ts.Timestamp(seconds=1735725600)
        return unary(stack.channel, OBJECT + "CreateEvent", m.CreateEventRequest(
            object_id=obj, event=m.Event(name="n", source=m.SOURCE_MANUAL, record_id=rec,
                                         start_at=t0, end_at=t1)), m.CreateEventResponse)

    create("r0")
    lst = unary(stack.channel, OBJECT + "ListEvents", m.ListEventsRequest(object_id=obj), m.ListEventsResponse)
    assert len(lst.events) == 1 and lst.resume_token
    create("r1")
    create("r2")
    # From the list's token: what followed the list, nothing of it.
    w = Watcher(stack.channel, OBJECT + "WatchEvents", m.WatchEventsRequest(
        filter=m.ListEventsRequest(object_id=obj), resume_token=lst.resume_token), m.WatchEventsResponse)
    got = w.take(2)
    assert [g.event.record_id for g in got] == ["r1", "r2"]
    w.quiet()
    w.cancel()
    # From a message's token: what followed that message.
    w = Watcher(stack.channel, OBJECT + "WatchEvents", m.WatchEventsRequest(
        filter=m.ListEventsRequest(object_id=obj), resume_token=got[0].resume_token), m.WatchEventsResponse)
    assert [g.event.record_id for g in w.take(1)] == ["r2"]
    w.quiet()
    w.cancel()
    # Another object's filter sees none of them.
    w = Watcher(stack.channel, OBJECT + "WatchEvents", m.WatchEventsRequest(
        filter=m.ListEventsRequest(object_id=obj + "x"), resume_token=lst.resume_token), m.WatchEventsResponse)
    w.quiet()
    w.cancel()


def test_catalog_watch_resources(stack, pb):
    m = pb("events/catalog/v1/catalog")
    lst = unary(stack.channel, CATALOG + "ListResources", m.ListResourcesRequest(), m.ListResourcesResponse)
    title = "cat-" + uuid.uuid4().hex[:6]
    unary(stack.channel, CATALOG + "CreateEventCategory",
          m.CreateEventCategoryRequest(resource=m.Resource(title={"value": title})), m.CreateEventCategoryResponse)
    w = Watcher(stack.channel, CATALOG + "WatchResources",
                m.WatchResourcesRequest(resume_token=lst.resume_token), m.WatchResourcesResponse)
    got = w.take(1)
    assert got[0].resource.title.value == title and got[0].type == m.CHANGE_TYPE_CREATED
    w.cancel()


def test_bad_tokens(stack, pb):
    m = pb("events/customer/v1/customer")
    details = pb("google/rpc/error_details")
    status = pb("google/rpc/status")
    for tok in ("garbage", "12.deadbeef", "-1.0"):
        call = stack.channel.unary_stream(CUSTOMER + "WatchEvents",
                                          request_serializer=m.WatchEventsRequest.SerializeToString,
                                          response_deserializer=m.WatchEventsResponse.FromString)
        with pytest.raises(grpc.RpcError) as e:
            next(iter(call(m.WatchEventsRequest(resume_token=tok), metadata=A, timeout=10)))
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, tok
        md = dict(e.value.trailing_metadata())
        st = status.Status.FromString(md["grpc-status-details-bin"])
        br = details.BadRequest.FromString(st.details[0].value)
        assert br.field_violations[0].field == "resume_token"
    # A token of another tenant is no token of this one.
    lst = unary(stack.channel, CUSTOMER + "ListEvents", m.ListEventsRequest(), m.ListEventsResponse)
    call = stack.channel.unary_stream(CUSTOMER + "WatchEvents",
                                      request_serializer=m.WatchEventsRequest.SerializeToString,
                                      response_deserializer=m.WatchEventsResponse.FromString)
    with pytest.raises(grpc.RpcError) as e:
        next(iter(call(m.WatchEventsRequest(resume_token=lst.resume_token), metadata=B, timeout=10)))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture(scope="module", params=["sqlite", "mongodb"])
def short_retention(request, workdir, credentials_file, monkeypatch_module):
    monkeypatch_module.setenv("EVENTS_CHANGES_RETAIN", "1s")
    s = Stack(workdir, credentials_file, _store_url(request.param, workdir, request),
              f"{request.module.__name__}-retain-{request.param}")
    monkeypatch_module.delenv("EVENTS_CHANGES_RETAIN")
    yield s
    assert s.stop() == (0, 0)


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def test_expired_token_is_out_of_range(short_retention, pb):
    s = short_retention
    m = pb("events/customer/v1/customer")
    lst = unary(s.channel, CUSTOMER + "ListEvents", m.ListEventsRequest(), m.ListEventsResponse)
    for i in range(2):
        unary(s.channel, CUSTOMER + "CreateEvent", customer_event(pb, f"exp-{i}-{uuid.uuid4().hex[:6]}"),
              m.CreateEventResponse)
    time.sleep(2.5)
    call = s.channel.unary_stream(CUSTOMER + "WatchEvents",
                                  request_serializer=m.WatchEventsRequest.SerializeToString,
                                  response_deserializer=m.WatchEventsResponse.FromString)
    with pytest.raises(grpc.RpcError) as e:
        next(iter(call(m.WatchEventsRequest(resume_token=lst.resume_token), metadata=A, timeout=10)))
    assert e.value.code() == grpc.StatusCode.OUT_OF_RANGE
    assert "retained" in e.value.details()


# ---- delivery under faults ----------------------------------------------------


@pytest.mark.parametrize("kind", ["sqlite", "mongodb"])
def test_exactly_once_across_a_killed_service(kind, request, workdir, credentials_file, pb):
    m = pb("events/activity/v1/activity")
    fm = pb("google/protobuf/field_mask")
    url = _store_url(kind, workdir, request)
    stacks = [Stack(workdir, credentials_file, url, f"watch-faults-{kind}-0")]
    current = {"stack": stacks[0]}
    acked = []  # (id, type) of every acknowledged write, in ack order
    acked_lock = threading.Lock()
    stop_writers = threading.Event()

    def writer(k):
        i = 0
        while not stop_writers.is_set():
            ch = current["stack"].channel
            try:
                ev = unary(ch, ACTIVITY + "CreateEvent",
                           m.CreateEventRequest(event=m.Event(name={"value": f"w{k}-{i}"})), m.CreateEventResponse)
                eid = ev.event.id if ev.HasField("event") else ev.id
                with acked_lock:
                    acked.append((eid, m.CHANGE_TYPE_CREATED))
                unary(ch, ACTIVITY + "UpdateEvent", m.UpdateEventRequest(
                    event=m.Event(id=eid, name={"value": f"w{k}-{i}-u"}), update_mask=fm.FieldMask(paths=["name"])),
                    m.UpdateEventResponse)
                with acked_lock:
                    acked.append((eid, m.CHANGE_TYPE_UPDATED))
                if i % 3 == 0:
                    unary(ch, ACTIVITY + "DeleteEvent", m.DeleteEventRequest(id=eid), m.DeleteEventResponse)
                    with acked_lock:
                        acked.append((eid, m.CHANGE_TYPE_DELETED))
            except grpc.RpcError:
                time.sleep(0.05)  # the service is down: try again on the next one
            i += 1

    lst = unary(stacks[0].channel, ACTIVITY + "ListEvents", m.ListEventsRequest(), m.ListEventsResponse)
    seen = [[] for _ in range(3)]  # per watcher: (token position, id, type)
    tokens = [lst.resume_token] * 3

    def watch(k):
        while not stop_watchers.is_set():
            ch = current["stack"].channel
            call = ch.unary_stream(ACTIVITY + "WatchEvents",
                                   request_serializer=m.WatchEventsRequest.SerializeToString,
                                   response_deserializer=m.WatchEventsResponse.FromString)
            try:
                for msg in call(m.WatchEventsRequest(resume_token=tokens[k]), metadata=A, timeout=60):
                    seen[k].append((int(msg.resume_token.split(".")[0]), msg.event.id, msg.type))
                    tokens[k] = msg.resume_token
                    if stop_watchers.is_set():
                        break
            except grpc.RpcError:
                time.sleep(0.1)

    stop_watchers = threading.Event()
    writers = [threading.Thread(target=writer, args=(k,), daemon=True) for k in range(3)]
    watchers = [threading.Thread(target=watch, args=(k,), daemon=True) for k in range(3)]
    for t in writers + watchers:
        t.start()
    try:
        time.sleep(3)
        # SIGKILL mid-stream, with writes in flight; then a new process on the store.
        stacks[0].service.proc.kill()
        stacks[0].service.proc.wait()
        stacks.append(Stack(workdir, credentials_file, url, f"watch-faults-{kind}-1"))
        current["stack"] = stacks[1]
        time.sleep(3)
        stop_writers.set()
        for t in writers:
            t.join(30)
        # Everything committed has been delivered once the feed is quiet. A
        # write the kill cut short between its claim and its mark (MongoDB)
        # holds the head back until readers settle it (15 s): until every
        # acknowledged write is behind the head, read the head again.
        deadline = time.time() + 60
        while True:
            final = unary(stacks[1].channel, ACTIVITY + "ListEvents",
                          m.ListEventsRequest(page_size=1), m.ListEventsResponse)
            final_pos = int(final.resume_token.split(".")[0])
            while time.time() < deadline and any(not s or s[-1][0] < final_pos for s in seen):
                time.sleep(0.2)
            got0 = {(i, t) for _, i, t in seen[0]}
            with acked_lock:
                behind = all(a in got0 for a in acked)
            if behind or time.time() >= deadline:
                break
            time.sleep(0.5)
        stop_watchers.set()
        for k in range(3):
            positions = [p for p, _, _ in seen[k]]
            assert positions == sorted(set(positions)), f"watcher {k}: duplicates or disorder"
            assert positions and positions[-1] == final_pos, f"watcher {k} stopped at {positions[-1:]}"
            # Each watcher saw the same changes, and every acknowledged write.
            assert seen[k] == seen[0]
            got = {(i, t) for _, i, t in seen[k]}
            with acked_lock:
                missing = [a for a in acked if a not in got]
            assert not missing, f"watcher {k} missed {missing[:5]}"
        # Replaying the feed gives the store's final state.
        live = set()
        for _, i, t in seen[0]:
            if t == m.CHANGE_TYPE_DELETED:
                live.discard(i)
            else:
                live.add(i)
        ids = set()
        tok = ""
        while True:
            page = unary(stacks[1].channel, ACTIVITY + "ListEvents",
                         m.ListEventsRequest(page_size=1000, page_token=tok), m.ListEventsResponse)
            ids |= {e.id for e in page.events}
            if not page.next_page_token:
                break
            tok = page.next_page_token
        # (A fresh store: the list before the writers was empty.)
        assert not lst.events
        assert live == ids
    finally:
        stop_writers.set()
        stop_watchers.set()
        for s in stacks[1:]:
            s.stop()
        stacks[0].gateway.stop()
        stacks[0].channel.close()
