"""Micro-measurements behind BENCHMARKS.md suggestions: service response building and client
to_wire strategies on 200k lines of the benchmark shape. Not run by bench/run.

    python bench/_micro_tail_encode.py
"""

import sys
import time

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
from flyteidl2.workflow import run_logs_service_pb2 as rl
from google.protobuf import timestamp_pb2

from flyte_run_widget.server.tail_logs_service import batches


def to_wire(lines):
    """The widget's former batch form (a tuple per line), before the columnar batches."""
    return [
        (
            ln.timestamp.seconds * 1000 + ln.timestamp.nanos // 1_000_000,
            ln.originator,
            ln.message.rstrip("\n"),
        )
        for ln in lines
    ]


N = 200_000
tail = b" the quick brown fox jumps over the lazy dog 0123456789"
base = time.time_ns()
recs = [(base + (i // 500) * 1000, 1, b"%08d" % i + tail) for i in range(N)]


def t(f, rep=3):
    best = 1e9
    for _ in range(rep):
        t0 = time.perf_counter()
        r = f()
        best = min(best, time.perf_counter() - t0)
    return best / N * 1e6, r


us, resps = t(lambda: list(batches(recs)))
print(f"service batches() current            {us:.2f} us/line")


def b2():
    out = []
    i = 0
    while i < N:
        resp = rl.TailLogsResponse()
        add = resp.logs.add().lines.add
        last = -1
        ts = None
        for ts_ns, o, d in recs[i : i + 20000]:
            if ts_ns != last:
                ts = timestamp_pb2.Timestamp(seconds=ts_ns // 10**9, nanos=ts_ns % 10**9)
                last = ts_ns
            add(message=d.decode("utf-8", "replace") + "\n", originator=o, timestamp=ts)
        i += 20000
        out.append(resp)
    return out


us, _ = t(b2)
print(f"service add(..., timestamp=ts) one call {us:.2f} us/line")
# pre-encoded: each record stored as LogLine bytes; response = concat
from flyteidl2.logs.dataplane import payload_pb2


def enc_line(ts_ns, o, d):
    ll = payload_pb2.LogLine(message=d.decode() + "\n", originator=o)
    ll.timestamp.FromNanoseconds(ts_ns)
    b = ll.SerializeToString()
    return b"\x0a" + _varint(len(b)) + b  # field 1? check


def _varint(n):
    out = bytearray()
    while True:
        x = n & 0x7F
        n >>= 7
        if n:
            out.append(x | 0x80)
        else:
            out.append(x)
            return bytes(out)


# figure out field number of lines in Logs and logs in TailLogsResponse
print(
    [(f.name, f.number) for f in rl.TailLogsResponse.DESCRIPTOR.fields],
    [(f.name, f.number) for f in rl.TailLogsResponse.DESCRIPTOR.fields_by_name["logs"].message_type.fields],
)
pre = [enc_line(*r) for r in recs]


def b3():
    out = []
    for i in range(0, N, 20000):
        body = b"".join(pre[i : i + 20000])
        out.append(b"\x0a" + _varint(len(body)) + body)
    return out


us, raw = t(b3)
print(f"service pre-encoded concat              {us:.3f} us/line")
m = rl.TailLogsResponse.FromString(raw[0])
assert len(m.logs[0].lines) == 20000 and m.logs[0].lines[5].message == resps[0].logs[0].lines[5].message, (
    m.logs[0]
)
ser = [r.SerializeToString() for r in resps]
us, _ = t(lambda: [r.SerializeToString() for r in resps])
print(f"serialize                                {us:.3f} us/line")
us, msgs = t(lambda: [rl.TailLogsResponse.FromString(s) for s in ser])
print(f"client parse (upb)                       {us:.3f} us/line")
us, _ = t(lambda: [list(m.logs[0].lines) for m in msgs])
print(f"client list(lines)                       {us:.3f} us/line")
lists = [list(m.logs[0].lines) for m in msgs]
us, _ = t(lambda: [to_wire(l) for l in lists])
print(f"client to_wire(list) (wrappers alive)    {us:.3f} us/line")
us, _ = t(lambda: [to_wire(m.logs[0].lines) for m in msgs])
print(f"client to_wire(container)                {us:.3f} us/line")


def tw2(lines):
    out = []
    app = out.append
    for ln in lines:
        ts = ln.timestamp
        s, n = ts.seconds, ts.nanos
        app(
            (
                s * 1000 + n // 1_000_000,
                ln.originator,
                ln.message[:-1] if ln.message.endswith("\n") else ln.message,
            )
        )
    return out


us, _ = t(lambda: [tw2(l) for l in lists])
print(f"client to_wire no int()/rstrip          {us:.3f} us/line")


def tw3(lines):
    msgs = [ln.message for ln in lines]
    text = "".join(msgs)
    return text


us, _ = t(lambda: [tw3(l) for l in lists])
print(f"client only join messages               {us:.3f} us/line")
print("---- components")
us, _ = t(lambda: [[ln.timestamp for ln in l] for l in lists])
print(f"ln.timestamp                 {us:.3f}")
us, _ = t(lambda: [[ln.timestamp.seconds for ln in l] for l in lists])
print(f"ln.timestamp.seconds         {us:.3f}")
us, _ = t(lambda: [[ln.originator for ln in l] for l in lists])
print(f"ln.originator                {us:.3f}")
us, _ = t(lambda: [[ln.message for ln in l] for l in lists])
print(f"ln.message                   {us:.3f}")
us, _ = t(lambda: [[ln.message.rstrip("\n") for ln in l] for l in lists])
print(f"ln.message.rstrip           {us:.3f}")
us, _ = t(lambda: [[(1.0, 1, "x") for ln in l] for l in lists])
print(f"loop + tuple                 {us:.3f}")
import gc

print("---- gc")
us, _ = t(lambda: [to_wire(l) for l in lists])
print(f"to_wire gc on   {us:.3f}")
gc.disable()
us, _ = t(lambda: [to_wire(l) for l in lists])
print(f"to_wire gc off  {us:.3f}")
us, _ = t(lambda: [to_wire(m.logs[0].lines) for m in msgs])
print(f"to_wire(container) gc off  {us:.3f}")
us, _ = t(lambda: list(batches(recs)))
print(f"batches gc off  {us:.3f}")
gc.enable()
gc.freeze()
us, _ = t(lambda: [to_wire(l) for l in lists])
print(f"to_wire gc frozen {us:.3f}")
