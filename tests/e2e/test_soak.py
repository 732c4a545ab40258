"""Soak: a bounded mixed load (creates, gets and lists over all four
dialects) against the processes of EVENTS_BIN_DIR (the ASan+UBSan build in
the test command), then SIGTERM: both exit 0, their logs hold no sanitizer
or leak report, every request was answered as expected, and the resident
memory of each process levels off (it does not keep growing from one quarter
of the run to the next). EVENTS_SOAK_SECONDS sets the load time (default 40).
"""
import os
import re
import tempfile
import threading
import time

from conftest import auth_a
from harden import (ACTIVITY, API_JSON, CATALOG, CUSTOMER, JSON, OBJECTS, Load, RestartableStack,
                    activity_body, customer_body, object_body, uid)

SECONDS = float(os.environ.get("EVENTS_SOAK_SECONDS", "40"))
# ASan keeps freed memory in quarantine (256 MiB by default) before reuse;
# a small one lets RSS level off within the run. Leak checking stays on.
ASAN = (os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=1:quarantine_size_mb=16"
        ":malloc_context_size=10").lstrip(":")
SANITIZER_REPORT = re.compile(r"AddressSanitizer|LeakSanitizer|runtime error:|ThreadSanitizer|"
                              r"UndefinedBehaviorSanitizer|SUMMARY: ")


def rss_kib(pid):
    # Private memory: the SQLite store reads through mmap, so VmRSS also
    # counts the database file's pages as they are touched, which is no leak.
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return 0


class Ops:
    """One mixed workload; ids made by the creates feed the gets."""

    def __init__(self, base):
        self.base = base
        self.lock = threading.Lock()
        self.ids = {"customer": [], "activity": [], "category": [], "object": []}

    def pick(self, kind, i):
        with self.lock:
            ids = self.ids[kind]
            return ids[i % len(ids)] if ids else None

    def add(self, kind, v):
        with self.lock:
            if len(self.ids[kind]) < 500:
                self.ids[kind].append(v)

    def __call__(self, s, i):
        b, h = self.base, auth_a()
        op = i % 12
        if op == 0:
            r = s.post(b + CUSTOMER, json=customer_body(), headers={**h, **JSON}, timeout=30)
            if r.status_code == 201:
                self.add("customer", r.json()["data"]["event_id"])
            return (r.status_code, r.text[:200]) if r.status_code != 201 else (200, "")
        if op == 1:
            eid = self.pick("customer", i)
            r = s.get(f"{b}{CUSTOMER}/{eid}?include_property_records=true" if eid else b + CUSTOMER,
                      headers=h, timeout=30)
        elif op == 2:
            r = s.get(b + CUSTOMER + "?count=20&sort_field=external_id&sort_direction=DESC", headers=h, timeout=30)
        elif op == 3:
            r = s.post(b + ACTIVITY, json=activity_body(prospect=i % 5), headers={**h, **API_JSON}, timeout=30)
            if r.status_code == 201:
                self.add("activity", r.json()["data"]["id"])
                return 200, ""
        elif op == 4:
            aid = self.pick("activity", i)
            r = s.get(f"{b}{ACTIVITY}/{aid}?fields[event]=name,prospect" if aid else b + ACTIVITY,
                      headers=h, timeout=30)
        elif op == 5:
            r = s.get(b + ACTIVITY + "?filter[prospect][id]=1,2&sort=-id&page[size]=25&count=true",
                      headers=h, timeout=30)
        elif op == 6:
            r = s.post(b + CATALOG + "/category", json={"title": "cat-" + uid(), "teams": ["e8ac09ede51e4e618eaf59942c98c260"]},
                       headers={**h, **JSON}, timeout=30)
            if r.status_code == 201:
                self.add("category", r.json()["id"])
                return 200, ""
        elif op == 7:
            cid = self.pick("category", i)
            r = s.get(f"{b}{CATALOG}/category/{cid}" if cid else b + CATALOG + "/category", headers=h, timeout=30)
        elif op == 8:
            r = s.get(b + CATALOG + "/category?page=1", headers=h, timeout=30)
        elif op == 9:
            r = s.post(b + OBJECTS + "/meetings/events", json=object_body(record_id=f"rec-{i % 7}"),
                       headers={**h, **JSON}, timeout=30)
            if r.status_code == 200:
                self.add("object", r.json()["id"])
        elif op == 10:
            oid = self.pick("object", i)
            r = s.get(f"{b}{OBJECTS}/meetings/events/{oid}" if oid else b + OBJECTS + "/meetings/events",
                      headers=h, timeout=30)
        else:
            r = s.get(b + OBJECTS + "/meetings/events?record_id=rec-3&limit=20", headers=h, timeout=30)
        return r.status_code, r.text[:200]


def test_soak(workdir, credentials_file):
    store = "sqlite:" + os.path.join(tempfile.mkdtemp(dir=workdir), "events.db")
    env = {"ASAN_OPTIONS": ASAN}
    stack = RestartableStack(workdir, credentials_file, store, "soak", service_env=env, gateway_env=env)
    samples = []  # (elapsed, service KiB, gateway KiB)
    try:
        pids = (stack.service.proc.pid, stack.gateway.proc.pid)
        t0 = time.monotonic()
        with Load(Ops(stack.base), threads=4, seconds=SECONDS) as load:
            while time.monotonic() - t0 < SECONDS:
                samples.append((time.monotonic() - t0, rss_kib(pids[0]), rss_kib(pids[1])))
                time.sleep(1)
        results = load.results
    finally:
        rcs = stack.stop()
    logs = stack.log_text()
    assert rcs == (0, 0), logs[-5000:]
    reports = [line for line in logs.splitlines() if SANITIZER_REPORT.search(line)]
    assert not reports, "\n".join(reports[:20])
    bad = [(s, d) for _, s, d in results if s != 200]
    assert len(results) > 200, f"only {len(results)} requests in {SECONDS}s"
    assert not bad, f"{len(bad)} of {len(results)} requests failed: {bad[:5]}"
    # Memory levels off. A leak grows the process in every stretch of the
    # run; caches that fill and allocator regions that grow once show as a
    # single step (seen once in CI: the service +10.7 MiB between two
    # samples, flat before and after). So compare the peaks of the last three
    # quarters: the smaller of the two quarter-on-quarter growths must stay
    # under half of max(16 MiB, 15 %) (the same leak rate as "under the whole
    # bound over the second half"), and a single step under twice the bound.
    quarters = [[s for s in samples if q * SECONDS / 4 <= s[0] < (q + 1) * SECONDS / 4] for q in (1, 2, 3)]
    assert all(len(q) >= 2 for q in quarters), samples
    for k, name in ((1, "events-service"), (2, "events-gateway")):
        peaks = [max(s[k] for s in q) for q in quarters]
        growth = (peaks[1] - peaks[0], peaks[2] - peaks[1])
        bound = max(16 * 1024, peaks[0] * 15 // 100)
        print(f"{name}: RSS {samples[0][k]} KiB at start, quarter peaks {peaks} KiB; {len(results)} requests")
        assert min(growth) < bound // 2 and max(growth) < 2 * bound, (
            f"{name} RSS kept growing: {growth} KiB in the last two quarters "
            f"(bounds {bound // 2} for the smaller, {2 * bound} for either): {samples}")
