#!/usr/bin/env python3
"""Helper of scripts/bench: seeding through the management API, the slow streaming upstream, the many-streams client,
bulk rows for the key-lookup and log-query measurements, and the report. Standard library only, except `tokens`,
which seals keys with AES-GCM through the `cryptography` package.

Every subcommand that measures appends one JSON line to the results file given with --results.
"""
import argparse
import asyncio
import base64
import hashlib
import hmac
import http.cookiejar
import json
import os
import random
import resource
import sqlite3
import string
import sys
import time
import urllib.error
import urllib.request


def append_result(path, record):
    with open(path, "a") as out:
        out.write(json.dumps(record) + "\n")


# ---------------------------------------------------------------- management API


class Api:
    """A logged-in session of the management API (cookie jar)."""

    def __init__(self, base):
        self.base = base.rstrip("/")
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def call(self, method, path, body=None, headers=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with self.opener.open(request, timeout=120) as answer:
                raw = answer.read()
        except urllib.error.HTTPError as error:
            raw = error.read()
            raise SystemExit(f"{method} {path} answered {error.code}: {raw[:500]!r}")
        answer = json.loads(raw)
        if not answer.get("success", False):
            raise SystemExit(f"{method} {path} failed: {answer}")
        return answer.get("data")

    def login(self, username, password):
        return self.call("POST", "/api/user/login", {"username": username, "password": password})


def wait_ready(base, timeout):
    """Waits until the server answers HTTP at all."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(base.rstrip("/") + "/api/pricing", timeout=2).read()
            return True
        except urllib.error.HTTPError:
            return True
        except Exception:
            time.sleep(0.2)
    return False


def cmd_wait(args):
    if not wait_ready(args.base, args.timeout):
        raise SystemExit(f"{args.base} did not answer within {args.timeout} s")


# Every gate stays on: the token has a quota cap and rate limits, the group has rate limits; the limits are far
# above what the benchmark reaches, so they are counted and checked on every call but never refuse one.
BIG_RPM = 1_000_000_000
BIG_TPM = 1_000_000_000_000


def cmd_seed(args):
    api = Api(args.base)
    api.login("root", args.password)
    api.call("PUT", "/api/user/", {"id": 1, "quota": 10**14})
    api.call("PUT", "/api/group/", {"name": "default", "rpm": BIG_RPM, "tpm": BIG_TPM})
    upstreams = [("bench-json", args.json_port), ("bench-sse", args.sse_port), ("bench-slow", args.slow_port)]
    for model, port in upstreams:
        api.call("POST", "/api/model/", {"model": model, "input_price": 0.15, "output_price": 0.6, "call_price": None,
                                         "max_output_tokens": 4096})
        api.call("POST", "/api/channel/", {
            "name": model, "type": "openai", "base_url": f"http://127.0.0.1:{port}", "key": "sk-upstream-bench",
            "models": [model], "groups": ["default"], "connect_timeout_ms": 10000,
            "first_byte_timeout_ms": 120000, "idle_timeout_ms": 120000})
    created = api.call("POST", "/api/token/", {"name": "bench", "remain_quota": 10**13, "expired_time": -1,
                                               "rpm": BIG_RPM, "tpm": BIG_TPM})
    key = created[0]["key"]
    # Nine more keys of root, so that root's key list has ten entries.
    api.call("POST", "/api/token/", {"name": "spare", "remain_quota": 10**9, "expired_time": -1, "count": 9})
    # A second user owns the many keys of the key-lookup measurement (its own key list, its own balance).
    user = api.call("POST", "/api/user/", {"username": "benchkeys", "password": args.password, "quota": 10**14})
    keys_user = user["id"] if isinstance(user, dict) and "id" in user else None
    if keys_user is None:
        listed = api.call("GET", "/api/user/search?keyword=benchkeys")
        keys_user = next(item["id"] for item in listed["items"] if item["username"] == "benchkeys")
    keys_api = Api(args.base)
    keys_api.login("benchkeys", args.password)
    ten = keys_api.call("POST", "/api/token/", {"name": "lookup", "unlimited_quota": True, "expired_time": -1, "count": 10})
    with open(args.out, "w") as out:
        json.dump({"key": key, "keys_user": keys_user, "lookup_keys": [token["key"] for token in ten]}, out)


# ---------------------------------------------------------------- slow streaming upstream


CHUNK = ('data: {"id":"chatcmpl-slow","object":"chat.completion.chunk","created":1700000000,"model":"bench-slow",'
         '"choices":[{"index":0,"delta":{"content":"tick "},"finish_reason":null}]}\n\n')
USAGE = ('data: {"id":"chatcmpl-slow","object":"chat.completion.chunk","created":1700000000,"model":"bench-slow",'
         '"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":%d,"total_tokens":%d}}\n\ndata: [DONE]\n\n')


def chunked(text):
    data = text.encode()
    return b"%x\r\n%s\r\n" % (len(data), data)


async def trickle_connection(reader, writer, interval, events):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length:
                await reader.readexactly(length)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n")
            for _ in range(events):
                writer.write(chunked(CHUNK))
                await writer.drain()
                await asyncio.sleep(interval)
            writer.write(chunked(USAGE % (events, events + 9)) + b"0\r\n\r\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


def cmd_trickle(args):
    """An OpenAI-compatible upstream that streams slowly: one chunk every `interval` seconds, `events` chunks."""
    raise_nofile()

    async def main():
        server = await asyncio.start_server(lambda r, w: trickle_connection(r, w, args.interval, args.events),
                                            "127.0.0.1", args.port, backlog=4096)
        async with server:
            await server.serve_forever()
    asyncio.run(main())


# ---------------------------------------------------------------- many open streams


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def proc_status(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            fields[name] = value.strip()
    return fields


def kib(value):
    return int(value.split()[0])


def cmd_streams(args):
    """Opens N streamed calls through Sluice against the slow upstream, holds them, samples Sluice's memory."""
    raise_nofile()
    body = json.dumps({"model": args.model, "stream": True,
                       "messages": [{"role": "user", "content": "Say hello in one short sentence."}]}).encode()
    request = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               b"Authorization: Bearer " + args.key.encode() + b"\r\nContent-Length: " + str(len(body)).encode() +
               b"\r\n\r\n" + body)
    opened = 0
    failed = {}
    writers = []

    async def one(gate):
        nonlocal opened
        async with gate:
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(args.host, args.port), 30)
                writer.write(request)
                await writer.drain()
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
                if not head.startswith(b"HTTP/1.1 200"):
                    failed[head.split(b"\r\n")[0].decode()] = failed.get(head.split(b"\r\n")[0].decode(), 0) + 1
                    writer.close()
                    return
                # The first event has arrived once a chunk holds "data:".
                seen = b""
                while b"data:" not in seen:
                    more = await asyncio.wait_for(reader.read(4096), 60)
                    if not more:
                        raise ConnectionError("closed before the first event")
                    seen += more
            except Exception as error:  # noqa: BLE001 - counted and reported
                name = type(error).__name__
                failed[name] = failed.get(name, 0) + 1
                return
        opened += 1
        writers.append(writer)
        # Keep reading, so that Sluice's writes never block on a full socket.
        try:
            while await reader.read(65536):
                pass
        except Exception:  # noqa: BLE001
            pass

    async def main():
        gate = asyncio.Semaphore(args.ramp)
        base = kib(proc_status(args.pid)["VmRSS"])
        started = time.monotonic()
        tasks = [asyncio.create_task(one(gate)) for _ in range(args.n)]
        deadline = started + args.timeout
        while time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            if opened + sum(failed.values()) >= args.n:
                break
        ramp_seconds = time.monotonic() - started
        # Hold them open a moment, then sample.
        await asyncio.sleep(2)
        status = proc_status(args.pid)
        rss_open = kib(status["VmRSS"])
        fds = len(os.listdir(f"/proc/{args.pid}/fd"))
        still_open = sum(1 for task in tasks if not task.done())
        for writer in writers:
            writer.close()
        await asyncio.sleep(3)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.sleep(2)
        after = proc_status(args.pid)
        record = {"name": "open_streams", "requested": args.n, "opened": opened, "open_at_sample": still_open,
                  "failed": failed, "ramp_seconds": round(ramp_seconds, 1), "rss_idle_kib": base,
                  "rss_with_streams_open_kib": rss_open, "peak_rss_kib": kib(after["VmHWM"]),
                  "rss_after_close_kib": kib(after["VmRSS"]), "sluice_fds_at_sample": fds,
                  "per_stream_kib": round((rss_open - base) / max(1, still_open), 1)}
        print(json.dumps(record))
        append_result(args.results, record)
    asyncio.run(main())


# ---------------------------------------------------------------- bulk tokens (key lookup)


def hkdf_sha256(ikm, salt, info, length=32):
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


ALPHANUMERICS = string.digits + string.ascii_uppercase + string.ascii_lowercase


def cmd_tokens(args):
    """Inserts keys straight into the tokens table, sealed and indexed exactly as Sluice does (SecretBox:
    HKDF-SHA256 keys, AES-GCM seal, HMAC-SHA256 lookup hash), until the user owns `total` keys."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    ikm = args.secret.encode()
    sealing = AESGCM(hkdf_sha256(ikm, b"sluice", b"sluice-aes-gcm-v1"))
    lookup = hkdf_sha256(ikm, b"sluice", b"sluice-hmac-lookup-v1")
    db = sqlite3.connect(args.db, timeout=60)
    have = db.execute("SELECT COUNT(*) FROM tokens WHERE user_id = ?", (args.user_id,)).fetchone()[0]
    need = max(0, args.total - have)
    now = int(time.time())
    rng = random.Random(args.total)
    sample = []
    started = time.monotonic()

    def rows():
        for index in range(need):
            key = "sk-" + "".join(rng.choices(ALPHANUMERICS, k=48))
            if len(sample) < args.sample and index % max(1, need // args.sample) == 0:
                sample.append(key)
            nonce = os.urandom(12)
            sealed = base64.b64encode(nonce + sealing.encrypt(nonce, key.encode(), None)).decode()
            digest = hmac.new(lookup, key.encode(), hashlib.sha256).hexdigest()
            yield (args.user_id, f"bulk-{have + index + 1}", digest, sealed, now, now * 1000)

    db.executemany("""INSERT INTO tokens (user_id, name, key_hash, key_enc, status, unlimited_quota, expired_time,
                      created_time, updated_at) VALUES (?, ?, ?, ?, 1, 1, -1, ?, ?)""", rows())
    # The owner's token count, as Sluice keeps it in the transaction that creates tokens.
    db.execute("UPDATE users SET token_count = token_count + ? WHERE id = ?", (need, args.user_id))
    db.commit()
    total = db.execute("SELECT COUNT(*) FROM tokens").fetchone()[0]
    db.close()
    with open(args.sample_out, "w") as out:
        out.write("\n".join(sample) + "\n")
    print(f"inserted {need} keys in {time.monotonic() - started:.1f} s; the tokens table holds {total}")


def cmd_coldkeys(args):
    """Times first calls with keys never used since the start: each is a cache miss (one indexed database lookup)."""
    keys = [line.strip() for line in open(args.keys) if line.strip()][: args.count]
    body = json.dumps({"model": "bench-json", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16}).encode()
    times = []
    for key in keys:
        request = urllib.request.Request(args.base.rstrip("/") + "/v1/chat/completions", data=body, method="POST",
                                         headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"})
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=30) as answer:
            answer.read()
            if answer.status != 200:
                raise SystemExit(f"cold key call answered {answer.status}")
        times.append((time.perf_counter() - started) * 1e6)
    times.sort()
    record = {"name": "key_lookup_cold", "tokens": args.tokens, "calls": len(times),
              "p50_us": round(times[len(times) // 2]), "p99_us": round(times[min(len(times) - 1, int(len(times) * 0.99))])}
    print(json.dumps(record))
    append_result(args.results, record)


# ---------------------------------------------------------------- bulk log rows and query times


def cmd_logs(args):
    """Fills the logs table to `rows` rows in one SQL statement (a recursive CTE), as the group-commit writer would:
    consume rows of the user's first ten keys over three models, one a second going back from now. The totals by the
    minute, hour and day (`log_minutes`, `log_hours`, `log_days`) get the new rows too, as the writer adds them in the
    same transaction: one upsert row per user, minute (or hour, or day), token, token name, model and type."""
    db = sqlite3.connect(args.db, timeout=60)
    have = db.execute("SELECT COUNT(*) FROM logs").fetchone()[0]
    last_id = db.execute("SELECT COALESCE(MAX(id), 0) FROM logs").fetchone()[0]
    need = max(0, args.rows - have)
    tokens = [row[0] for row in db.execute("SELECT id FROM tokens WHERE user_id = ? ORDER BY id LIMIT 10", (args.user_id,))]
    started = time.monotonic()
    now = int(time.time())
    if need:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = OFF")
        db.execute("PRAGMA cache_size = -1000000")
        cases = " ".join(f"WHEN {i} THEN {token}" for i, token in enumerate(tokens))
        db.execute(f"""
            WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < {need})
            INSERT INTO logs (created_at, type, user_id, token_id, token_name, model_name, group_name, channel_id, channel_name,
                              prompt_tokens, completion_tokens, quota, use_time_ms, is_stream, ip, content, request_id, user_charged)
            SELECT {now} - {need} + x, 2, {args.user_id}, CASE x % {len(tokens)} {cases} END, 'bench',
                   CASE x % 3 WHEN 0 THEN 'bench-json' WHEN 1 THEN 'bench-sse' ELSE 'gpt-4o-mini' END, 'default', 1, 'bench-json',
                   9 + x % 50, 9 + x % 200, 14 + x % 80, 1 + x % 900, x % 2, '127.0.0.1', '',
                   printf('bulk-%08d', x), 1
            FROM n""")
        for table, column, seconds in (("log_minutes", "minute", 60), ("log_hours", "hour", 3600), ("log_days", "day", 86400)):
            db.execute(f"""
                INSERT INTO {table} (user_id, {column}, token_id, token_name, model_name, type, count, prompt_tokens,
                                     completion_tokens, quota)
                SELECT COALESCE(user_id, 0), created_at - (created_at % {seconds} + {seconds}) % {seconds}, COALESCE(token_id, 0),
                       token_name, model_name, type, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), SUM(quota)
                FROM logs WHERE id > ?
                GROUP BY 1, 2, 3, 4, 5, 6
                ON CONFLICT (user_id, {column}, token_id, token_name, model_name, type) DO UPDATE SET
                    count = {table}.count + excluded.count, prompt_tokens = {table}.prompt_tokens + excluded.prompt_tokens,
                    completion_tokens = {table}.completion_tokens + excluded.completion_tokens, quota = {table}.quota + excluded.quota
                """, (last_id,))
        db.commit()
    total = db.execute("SELECT COUNT(*) FROM logs").fetchone()[0]
    db.close()
    print(f"inserted {need} log rows in {time.monotonic() - started:.1f} s; the logs table holds {total}")


def cmd_queries(args):
    """Times management queries through the API (median and worst of several runs, after one untimed run), logged in
    as `username`, or with the API key `key`."""
    api = Api(args.base)
    headers = {"Authorization": f"Bearer {args.key}"} if args.key else None
    if not args.key:
        api.login(args.username, args.password)
    for label, path in [pair.split("=", 1) for pair in args.paths]:
        times = []
        for attempt in range(args.repeat + 1):
            started = time.perf_counter()
            data = api.call("GET", path, headers=headers)
            elapsed = (time.perf_counter() - started) * 1000
            if attempt:
                times.append(elapsed)
        times.sort()
        total = data.get("total") if isinstance(data, dict) else None
        if isinstance(data, list):
            total = sum(row.get("count", 0) for row in data)
        elif isinstance(data, dict) and total is None and "request_count" in data:
            total = data["request_count"]
        record = {"name": "query", "label": label, "user": "key" if args.key else args.username, "path": path, "total": total,
                  "median_ms": round(times[len(times) // 2], 2), "max_ms": round(times[-1], 2), "runs": len(times)}
        print(json.dumps(record))
        append_result(args.results, record)


# ---------------------------------------------------------------- wrk results and the report


def cmd_wrk(args):
    """Reads wrk's output (our Lua script's WRKJSON line) and records it under a name."""
    text = open(args.output).read()
    line = next((l for l in text.splitlines() if l.startswith("WRKJSON ")), None)
    if line is None:
        raise SystemExit(f"no result in wrk output:\n{text}")
    record = json.loads(line[len("WRKJSON "):])
    record["rps"] = round(record["requests"] / (record["duration_us"] / 1e6), 1)
    record.update({"name": "wrk", "label": args.label, "path": args.path, "connections": args.connections})
    if args.extra:
        record.update(json.loads(args.extra))
    print(json.dumps(record))
    append_result(args.results, record)
    errors = record["non2xx"] + record["connect_errors"] + record["read_errors"] + record["write_errors"] + record["timeouts"]
    if errors:
        print(f"warning: {args.label} had {errors} failed calls", file=sys.stderr)


def cmd_record(args):
    record = json.loads(args.json)
    print(json.dumps(record))
    append_result(args.results, record)


def cmd_report(args):
    records = [json.loads(line) for line in open(args.results) if line.strip()]
    wrk = {(r["label"], r["path"]): r for r in records if r["name"] == "wrk"}
    meta = next((r for r in records if r["name"] == "machine"), {})
    lines = []
    out = lines.append

    def ratio(a, b):
        return a / b if b else float("nan")

    out("# scripts/bench results (raw); see docs/performance.md for how to read them")
    for key in ("date", "commit", "command", "cpu", "nproc", "memory", "swift", "load_before", "wrk_duration"):
        if key in meta:
            out(f"{key}: {meta[key]}")
    out("")
    out("## throughput and latency (wrk)")
    out(f"{'run':<28} {'path':<8} {'conns':>5} {'calls/s':>10} {'p50 us':>8} {'p90 us':>8} {'p99 us':>8} {'errors':>6}")
    for r in records:
        if r["name"] != "wrk":
            continue
        errors = r["non2xx"] + r["connect_errors"] + r["read_errors"] + r["write_errors"] + r["timeouts"]
        out(f"{r['label']:<28} {r['path']:<8} {r['connections']:>5} {r['rps']:>10.0f} {r['p50_us']:>8} {r['p90_us']:>8} "
            f"{r['p99_us']:>8} {errors:>6}")
    out("")
    out("## ratios (same run)")
    summary = {}
    for kind in ("chat", "stream"):
        direct, sluice = wrk.get((f"{kind} throughput", "direct")), wrk.get((f"{kind} throughput", "sluice"))
        if direct and sluice:
            summary[f"{kind}_throughput_ratio"] = ratio(sluice["rps"], direct["rps"])
            out(f"{kind} throughput through Sluice / direct: {sluice['rps']:.0f} / {direct['rps']:.0f} = "
                f"{100 * summary[f'{kind}_throughput_ratio']:.1f}%")
        direct, sluice = wrk.get((f"{kind} latency", "direct")), wrk.get((f"{kind} latency", "sluice"))
        if direct and sluice:
            summary[f"{kind}_added_p50_us"] = sluice["p50_us"] - direct["p50_us"]
            out(f"{kind} p50 added at 1 connection: {sluice['p50_us']} - {direct['p50_us']} = {sluice['p50_us'] - direct['p50_us']} us"
                f" (p99 added: {sluice['p99_us'] - direct['p99_us']} us)")
    direct, floor = wrk.get(("chat throughput", "direct")), wrk.get(("chat throughput", "floor"))
    if direct and floor:
        out(f"chat throughput through the relay floor / direct: {floor['rps']:.0f} / {direct['rps']:.0f} = "
            f"{100 * ratio(floor['rps'], direct['rps']):.1f}%")
    direct, floor = wrk.get(("chat latency", "direct")), wrk.get(("chat latency", "floor"))
    if direct and floor:
        out(f"chat p50 added by the relay floor at 1 connection: {floor['p50_us']} - {direct['p50_us']} = "
            f"{floor['p50_us'] - direct['p50_us']} us")
    out("")
    for r in records:
        if r["name"] in ("rss", "open_streams", "key_lookup_cold", "query", "note"):
            out(json.dumps(r))
    text = "\n".join(lines) + "\n"
    with open(args.out, "w") as handle:
        handle.write(text)
    print(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("wait"); p.add_argument("--base", required=True); p.add_argument("--timeout", type=float, default=60)
    p.set_defaults(run=cmd_wait)

    p = sub.add_parser("seed")
    for name in ("--base", "--password", "--out"):
        p.add_argument(name, required=True)
    for name in ("--json-port", "--sse-port", "--slow-port"):
        p.add_argument(name, type=int, required=True)
    p.set_defaults(run=cmd_seed)

    p = sub.add_parser("trickle"); p.add_argument("--port", type=int, required=True)
    p.add_argument("--interval", type=float, default=2.0); p.add_argument("--events", type=int, default=30)
    p.set_defaults(run=cmd_trickle)

    p = sub.add_parser("streams")
    p.add_argument("--host", default="127.0.0.1"); p.add_argument("--port", type=int, required=True)
    p.add_argument("--key", required=True); p.add_argument("--model", default="bench-slow")
    p.add_argument("-n", type=int, required=True); p.add_argument("--ramp", type=int, default=256)
    p.add_argument("--pid", type=int, required=True); p.add_argument("--timeout", type=float, default=90)
    p.add_argument("--results", required=True)
    p.set_defaults(run=cmd_streams)

    p = sub.add_parser("tokens")
    for name in ("--db", "--secret", "--sample-out"):
        p.add_argument(name, required=True)
    p.add_argument("--user-id", type=int, required=True); p.add_argument("--total", type=int, required=True)
    p.add_argument("--sample", type=int, default=1000)
    p.set_defaults(run=cmd_tokens)

    p = sub.add_parser("coldkeys")
    p.add_argument("--base", required=True); p.add_argument("--keys", required=True); p.add_argument("--count", type=int, default=200)
    p.add_argument("--tokens", type=int, required=True); p.add_argument("--results", required=True)
    p.set_defaults(run=cmd_coldkeys)

    p = sub.add_parser("logs"); p.add_argument("--db", required=True); p.add_argument("--rows", type=int, required=True)
    p.add_argument("--user-id", type=int, default=1)
    p.set_defaults(run=cmd_logs)

    p = sub.add_parser("queries")
    for name in ("--base", "--results"):
        p.add_argument(name, required=True)
    p.add_argument("--username"); p.add_argument("--password"); p.add_argument("--key")
    p.add_argument("--repeat", type=int, default=5); p.add_argument("paths", nargs="+", help="LABEL=PATH")
    p.set_defaults(run=cmd_queries)

    p = sub.add_parser("wrk")
    for name in ("--output", "--label", "--path", "--results"):
        p.add_argument(name, required=True)
    p.add_argument("--connections", type=int, required=True); p.add_argument("--extra")
    p.set_defaults(run=cmd_wrk)

    p = sub.add_parser("record"); p.add_argument("--results", required=True); p.add_argument("json")
    p.set_defaults(run=cmd_record)

    p = sub.add_parser("report"); p.add_argument("--results", required=True); p.add_argument("--out", required=True)
    p.set_defaults(run=cmd_report)

    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
