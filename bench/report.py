#!/usr/bin/env python3
"""Turns bench/run.sh's results.tsv (key<TAB>value lines) into ONE markdown table.

Columns: section, measurement, A, B, A/B, notes. Each section's first row says
what A and B are. Nothing is judged here: figures are reported as measured.
"""
import sys

CLK_TCK = 100  # /proc ticks per second; run.sh records getconf CLK_TCK


def load(path):
    r = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if "\t" in line:
                k, v = line.split("\t", 1)
                r[k] = v
    return r


def merge_runs(r):
    """LOAD_rN.metric keys (repeated runs) -> LOAD.metric: the mean of rates and
    latencies, the sum of counts and CPU, the max of peak memory."""
    import re
    groups = {}
    for k, v in r.items():
        m = re.match(r"^(.*)_r(\d+)\.(.*)$", k)
        if m:
            groups.setdefault((m.group(1), m.group(3)), []).append((int(m.group(2)), v))
    for (base, metric), vals in groups.items():
        vals.sort()
        xs = []
        for _, v in vals:
            try:
                xs.append(float(v))
            except ValueError:
                pass
        if not xs or f"{base}.{metric}" in r:
            continue
        if metric in ("rps", "p50", "p99"):
            r[f"{base}.{metric}"] = str(sum(xs) / len(xs))
            if len(xs) > 1:
                r[f"{base}.runs.{metric}"] = " / ".join(fmt(x, "rate" if metric == "rps" else "g")
                                                        for x in xs)
        elif metric.startswith("hwm.") or metric.startswith("anon."):
            r[f"{base}.{metric}"] = str(max(xs))
        elif metric == "conc":
            r[f"{base}.{metric}"] = str(xs[0])
        else:
            r[f"{base}.{metric}"] = str(sum(xs))
        r[f"{base}.nruns"] = str(len(xs))


R = load(sys.argv[1])
WORKERS = R.get("svc.workers_default") or "the default"
ROWS = []
try:
    CLK_TCK = int(R.get("machine.clk_tck", CLK_TCK))
except ValueError:
    pass


def num(key):
    v = R.get(key)
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def fmt(x, kind="g"):
    if x is None:
        return "–"
    if kind == "rate":
        return f"{x:,.0f}" if x >= 100 else f"{x:.2f}"
    if kind == "ratio":
        return f"{x:.2f}" if x >= 0.01 else f"{x:.4f}"
    if kind == "mib":
        return f"{x:.1f}"
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    if x >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def row(sec, what, a=None, b=None, kind="g", note="", a_text=None, b_text=None):
    ROWS.append(
        (
            sec,
            what,
            a_text if a_text is not None else fmt(a, kind),
            b_text if b_text is not None else fmt(b, kind),
            fmt(ratio(a, b), "ratio") if a_text is None and b_text is None else "",
            note,
        )
    )


def header(sec, text):
    ROWS.append((f"**{sec}**", f"**{text}**", "", "", "", ""))


def other_pct(load):
    """CPU the machine spent outside this benchmark's processes during the load,
    in % of all its CPUs (another session's build, a fuzzer...)."""
    busy, ours, wall = num(f"{load}.busy"), num(f"{load}.cpu.ours"), num(f"{load}.wall_ms")
    ncpu = num("machine.nproc") or 1
    if busy is None or ours is None or not wall:
        return None
    return max(0.0, busy - ours) * 100.0 / (wall / 1000.0 * ncpu * CLK_TCK)


def cpu_per_1k(load, proc):
    t, n = num(f"{load}.cpu.{proc}"), num(f"{load}.n")
    if t is None or not n:
        return None
    return t * 1000.0 / CLK_TCK / n * 1000.0


def counts(load):
    n, ok = num(f"{load}.n"), num(f"{load}.ok")
    if n is None:
        return ""
    return f"{int(ok or 0)}/{int(n)} ok"


def mib(kib):
    return None if kib is None else kib / 1024.0


def pair_rows(sec, label, a, b, server_a, server_b, server_note=""):
    """Throughput, latency and CPU rows for two loads A and B."""
    note = join(f"A {counts(a)}, B {counts(b)}", runs(a, "rps") and "A " + runs(a, "rps"),
                runs(b, "rps") and "B " + runs(b, "rps"))
    row(sec, f"{label}: requests/s", num(f"{a}.rps"), num(f"{b}.rps"), "rate", note)
    row(sec, f"{label}: p50 latency ms", num(f"{a}.p50"), num(f"{b}.p50"), note=join(
        runs(a, "p50") and "A " + runs(a, "p50"), runs(b, "p50") and "B " + runs(b, "p50")))
    row(sec, f"{label}: p99 latency ms", num(f"{a}.p99"), num(f"{b}.p99"), note=join(
        runs(a, "p99") and "A " + runs(a, "p99"), runs(b, "p99") and "B " + runs(b, "p99")))
    ca = sum(x for x in (cpu_per_1k(a, p) for p in server_a) if x is not None)
    cb = sum(x for x in (cpu_per_1k(b, p) for p in server_b) if x is not None)
    parts = [f"{p} {fmt(cpu_per_1k(a, p))}" for p in server_a if len(server_a) > 1]
    row(sec, f"{label}: server CPU ms per 1k requests", ca, cb, note=server_note or
        (("A = " + " + ".join(parts)) if parts else ""))
    row(sec, f"{label}: load-generator CPU ms per 1k requests", cpu_per_1k(a, "client"),
        cpu_per_1k(b, "client"))
    row(sec, f"{label}: CPU used by other processes, % of the machine", other_pct(a),
        other_pct(b), note="not part of the benchmark: other work on the machine meanwhile")


merge_runs(R)


def runs(load, metric):
    v = R.get(f"{load}.runs.{metric}")
    return f"runs {v}" if v else ""


def join(*parts):
    return "; ".join(p for p in parts if p)


c = R.get("cfg.C", "?")
D = R.get("cfg.D", "?")
mem_gib = (num("machine.mem_kib") or 0) / 1024 / 1024
header("0", "machine and run")
row("0", "machine", a_text=f"{R.get('machine.nproc')} × {R.get('machine.model')}, "
    f"{mem_gib:.1f} GiB RAM", b_text="", note=f"{R.get('machine.kernel')}, "
    f"{R.get('machine.disk')} disk, loopback only; load average at start "
    f"{R.get('machine.load_start')}, at end {R.get('machine.load_end')}")
row("0", "date, commit, mode", a_text=R.get("machine.date", "?"), b_text=R.get("machine.commit", "?"),
    note=f"{R.get('cfg.mode')} mode: {D} s per timed load after {R.get('cfg.W')} s warm-up, "
    f"{R.get('cfg.repeat')} run(s) of each section 1, 2 and 5-scaling load (A B B A order, "
    f"mean reported), EVENTS_LOG_LEVEL={R.get('cfg.log_level')}; {R.get('cfg.tools')}")

small, big = R.get("cfg.small"), R.get("cfg.big")
fsmall, fbig = R.get("cfg.fsmall"), R.get("cfg.fbig")

header("1", f"gateway overhead — customer dialect, SQLite store seeded with {small} events "
       "(then ANALYZE), "
       f"c={c}, {D} s each; A = REST through events-gateway (wrk), B = gRPC direct (ghz)")
for op, what in (("create", "create (POST / CreateEvent)"), ("get", "get by id"),
                 ("list", "filtered list of 50 (customer_id, count)")):
    pair_rows("1", what, f"rest_{op}", f"grpc_{op}", ("gw", "svc"), ("svc",))
    # Issue 16's measure of the gateway: its own CPU per REST request against
    # the service's per gRPC request (target for get: 0.35 or less).
    row("1", f"{what}: gateway CPU per REST request vs service CPU per gRPC request, ms per 1k",
        cpu_per_1k(f"rest_{op}", "gw"), cpu_per_1k(f"grpc_{op}", "svc"))
    if op == "get" and num("grpc_floor_get.n"):
        floor_svc = cpu_per_1k("grpc_floor_get", "svc")
        row("1", "get by id: CPU of a bare gRPC core client per GetEvent (bench/grpcload --get, C, "
            "one thread) vs service CPU per gRPC get, ms per 1k", cpu_per_1k("grpc_floor_get", "client"),
            cpu_per_1k("grpc_get", "svc"), note=join(
                f"the least the gateway's gRPC side can cost per REST get; {counts('grpc_floor_get')}",
                floor_svc and f"the service spent {fmt(floor_svc)} per get under this client"))

header("2", f"gRPC core vs peer — grpc.health.v1.Health/Check, ghz c={c}, 1 connection, {D} s; "
       f"A = events-service (gRPC C core, {WORKERS} workers), B = grpc-go health server (bench/healthpeer)")
pair_rows("2", "Check", "health_svc", "health_peer", ("svc",), ("peer",))

store_n = R.get("cfg.store_n")
store_rounds = R.get("cfg.store_repeat", "1")
header("3", f"store cost — {store_rounds} rounds a side of {store_n} customer events created with c={c}, "
       "alternating (A B B A ...), rates the mean of the rounds; A = the service's "
       "CreateEvent (gRPC, bench/grpcload, C on gRPC core; the store group-commits concurrent SQLite writes and "
       "batches concurrent MongoDB inserts), B = raw single-document inserts of the same "
       f"documents, each its own transaction (bench/rawinsert, {c} threads)")
for eng, label, store_proc in (("sqlite", "SQLite (WAL, synchronous=FULL)", None),
                               ("mongo", "FerretDB via mongo-c-driver", "fdb")):
    a, b = f"store_{eng}_svc", f"store_{eng}_raw"
    ra, rb = num(f"{a}.rps"), num(f"{b}.rps")
    extra = ""
    if ra and rb:
        extra = f"; service overhead {1000 / ra - 1000 / rb:.3f} ms per document of wall time"
    if R.get(f"{a}.runs.rps"):
        extra += f"; rounds A {R[f'{a}.runs.rps']}, B {R.get(f'{b}.runs.rps', '?')}"
    row("3", f"{label}: documents/s", ra, rb, "rate", f"A {counts(a)}, B {counts(b)}{extra}")
    row("3", f"{label}: p50 latency ms", num(f"{a}.p50"), num(f"{b}.p50"))
    row("3", f"{label}: p99 latency ms", num(f"{a}.p99"), num(f"{b}.p99"))
    if store_proc:
        row("3", f"{label}: FerretDB CPU ms per 1k documents", cpu_per_1k(a, store_proc),
            cpu_per_1k(b, store_proc))
    row("3", f"{label}: events-service CPU ms per 1k documents", cpu_per_1k(a, "svc"), None,
        note="B has no service")
    row("3", f"{label}: client CPU ms per 1k documents (grpcload / rawinsert)",
        cpu_per_1k(a, "client"), cpu_per_1k(b, "client"))
    row("3", f"{label}: CPU used by other processes, % of the machine", other_pct(a),
        other_pct(b))

hwm_note = "" if R.get("cfg.hwm_reset") == "1" else " (VmHWM could not be reset: peak since start)"
header("4", "memory — A = peak RSS under the load (VmHWM, reset before it), B = VmRSS idle after "
       f"start, MiB{hwm_note}")
mem = [
    (f"events-service (SQLite, {WORKERS} workers)", "svc", "svc",
     ["rest_create", "grpc_create", "rest_get", "grpc_get", "rest_list", "grpc_list", "health_svc",
      "store_sqlite_svc"]),
    ("events-gateway", "gw", "gw", ["rest_create", "rest_get", "rest_list"]),
    ("grpc-go health peer", "peer", "peer", ["health_peer"]),
    (f"events-service (FerretDB, {WORKERS} workers)", "svc_mongo", "svc", ["store_mongo_svc"]),
    ("events-ferretdb", "fdb", "fdb", ["store_mongo_svc", "store_mongo_raw"]),
]
for label, idle_key, proc, loads in mem:
    idle = mib(num(f"idle.{idle_key}"))
    for ld in loads:
        row("4", f"{label} under {ld}", mib(num(f"{ld}.hwm.{proc}")), idle, "mib")

header("4", "private memory — A = peak RssAnon under the load (sampled every 0.1 s), B = RssAnon "
       "idle after start, MiB; targets: idle ≤ 4, the service under each c=16 load ≤ 32")
for label, idle_key, proc, loads in mem:
    idle = mib(num(f"idle.{idle_key}.anon"))
    row("4", f"{label} idle: RssAnon / RssFile", idle, mib(num(f"idle.{idle_key}.file")), "mib",
        "A = private (RssAnon), B = file-backed (RssFile: shared libraries, mapped store pages)")
    for ld in loads:
        row("4", f"{label} under {ld}: RssAnon", mib(num(f"{ld}.anon.{proc}")), idle, "mib")

header("5", f"scaling — the same CreateEvent load (gRPC, c={c}, {D} s) with EVENTS_WORKERS=w; "
       "A = w workers, B = 1 worker")
for eng, label in (("sqlite", "SQLite"), ("mongo", "FerretDB")):
    base = f"scale_{eng}_w1"
    for w in (1, 2, 4):
        ld = f"scale_{eng}_w{w}"
        row("5", f"{label}, {w} worker(s): requests/s", num(f"{ld}.rps"), num(f"{base}.rps"),
            "rate", join(counts(ld), runs(ld, "rps"),
                         f"other processes {fmt(other_pct(ld))}% of the machine"))
        row("5", f"{label}, {w} worker(s): p99 ms", num(f"{ld}.p99"), num(f"{base}.p99"),
            note=f"p50: A {fmt(num(f'{ld}.p50'))}, B {fmt(num(f'{base}.p50'))}")

header("5", f"list latency vs stored events — ListEvents customer_id filter (the customer has "
       f"{R.get('cfg.per_customer')} events at every size), page of 50 with total, c=1, {D} s; "
       "A = large store, B = small store")
def seeded(engine, n):
    v = num(f"seed_{engine}_{n}.seconds")
    return f"{n} seeded directly in {v:.1f} s" if v is not None else ""


for key, label, a_n, b_n, note in (
        ("list_sqlite", "SQLite bulk-loaded while no service ran", big, small,
         join(seeded("sqlite", big), seeded("sqlite", small), "statistics only from the service's "
              f"ANALYZE at open; sqlite_stat1 rows after the A run: "
              f"{R.get(f'list_sqlite_{big}.stat1_rows', '?')}")),
        ("list_sqlite_an", "SQLite after a separate ANALYZE (analysis_limit=1000)", big, small,
         "control: the same files, after bench/rawinsert analyze"),
        ("list_mongo", "FerretDB", fbig, fsmall,
         join("smaller sizes: FerretDB v1 (SQLite handler) filters and counts in Go over every "
              "document, so 1M is out of reach", seeded("mongo", fbig), seeded("mongo", fsmall)))):
    a, b = f"{key}_{a_n}", f"{key}_{b_n}"
    lab = f"{label}, {a_n} vs {b_n}"
    row("5", f"{lab}: p50 ms", num(f"{a}.p50"), num(f"{b}.p50"), note=note)
    row("5", f"{lab}: p99 ms", num(f"{a}.p99"), num(f"{b}.p99"))
    row("5", f"{lab}: requests/s", num(f"{a}.rps"), num(f"{b}.rps"), "rate",
        join(f"A {counts(a)}, B {counts(b)}", f"other processes A {fmt(other_pct(a))}%, "
             f"B {fmt(other_pct(b))}% of the machine"))
    for proc, pname in (("svc", "events-service"), ("fdb", "events-ferretdb")):
        if num(f"{a}.cpu.{proc}") is None and num(f"{b}.cpu.{proc}") is None:
            continue
        ca, cb = cpu_per_1k(a, proc), cpu_per_1k(b, proc)
        row("5", f"{lab}: {pname} CPU ms per request", ca / 1000 if ca is not None else None,
            cb / 1000 if cb is not None else None)
    row("5", f"{lab}: service peak RSS MiB", mib(num(f"{a}.hwm.svc")), mib(num(f"{b}.hwm.svc")),
        "mib")

header("6", "connections held open — GET /readyz on a new connection while the gateway holds "
       "them; A = with them, B = with nothing else open; memory is the gateway's RssAnon")
for kib in (64, 8):
    p = f"conns{kib}"
    pool = f"EVENTS_HTTP_CONN_MEMORY_KIB={kib}"
    for what, label in (("idle", "10,000 idle keep-alive connections"),
                        ("slow", "2,000 clients sending a byte a second")):
        row("6", f"{label} ({pool}): p50 ms", num(f"{p}.{what}.p50"), num(f"{p}.none.p50"))
        row("6", f"{label} ({pool}): max ms", num(f"{p}.{what}.max"), num(f"{p}.none.max"))
        if what == "idle":
            row("6", f"{label} ({pool}): gateway RssAnon MiB as soon as all are open",
                mib(num(f"{p}.idle.rss_anon_at_once")), mib(num(f"{p}.none.rss_anon")), "mib",
                "connections idle past EVENTS_HTTP_PARK_AFTER_S (2 s) are parked outside "
                "libmicrohttpd; the early ones already are")
        row("6", f"{label} ({pool}): gateway RssAnon MiB", mib(num(f"{p}.{what}.rss_anon")),
            mib(num(f"{p}.none.rss_anon")), "mib",
            "held open past the park delay; then 100 of them served again"
            if what == "idle" else "")

header("7", "bulk create — customer events created at c=1 (one call in flight) on the same "
       "service and store; A = BatchCreateEvents of "
       f"{R.get('batch_sqlite.size', R.get('batch_mongo.size', '?'))} events per call, "
       "B = one CreateEvent per event; both sent by bench/batchload.py (a request serialised "
       "once, stamped per call)")
for eng, label, store_proc in (("sqlite", "SQLite (WAL, synchronous=FULL)", None),
                               ("mongo", "FerretDB via mongo-c-driver", "fdb")):
    a, b = f"batch_{eng}_bulk", f"batch_{eng}_single"
    size = num(f"batch_{eng}.size") or 0
    ra, rb = num(f"{a}.rps"), num(f"{b}.rps")
    ea = ra * size if ra is not None else None
    row("7", f"{label}: events/s", ea, rb, "rate",
        f"A {counts(a)} calls of {int(size)}, B {counts(b)} calls")
    row("7", f"{label}: p50 ms per call", num(f"{a}.p50"), num(f"{b}.p50"))
    ca, cb = cpu_per_1k(a, "svc"), cpu_per_1k(b, "svc")
    row("7", f"{label}: events-service CPU ms per 1k events",
        ca / size if ca is not None and size else None, cb)
    if store_proc:
        fa, fb = cpu_per_1k(a, store_proc), cpu_per_1k(b, store_proc)
        row("7", f"{label}: FerretDB CPU ms per 1k events", fa / size if fa is not None and size else None,
            fb)
header("8", "change feed: CustomerEventService/WatchEvents, commit (create acknowledged) to "
       "receipt, SQLite, one create at a time; A = 100 watchers, B = 1 watcher")
row("8", "delivery p50 ms", num("watch_100.p50"), num("watch_1.p50"),
    note=f"samples A {R.get('watch_100.samples', '?')}, B {R.get('watch_1.samples', '?')}; "
         "one store read per tenant and pass, fanned out to every watcher")
row("8", "delivery p99 ms", num("watch_100.p99"), num("watch_1.p99"))

print("| # | measurement | A | B | A/B | notes |")
print("|---|---|---:|---:|---:|---|")
for r in ROWS:
    print("| " + " | ".join(str(x).replace("|", "\\|") for x in r) + " |")
