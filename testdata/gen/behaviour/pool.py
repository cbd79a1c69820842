#!/usr/bin/env python3
"""A minimal CryptoNote (XMRig dialect) pool for test captures: answers login with a job,
accepts every submit, answers keepalived, and pushes a new job every --job-every seconds.
Difficulty is set by --diff (the 4-byte compact target XMRig reads). Test lab use only."""
import argparse, asyncio, json, os, random

BLOB = ("1010a0e4d5a006" + "c2" * 32 + "00000000" + "7d" * 32 + "05")
SEED = "a1f3" * 16

def target(diff):
    t = max(1, 0xFFFFFFFF // max(1, diff))
    return t.to_bytes(4, "little").hex()

async def client(reader, writer, a):
    jobs = 0
    def job():
        nonlocal jobs
        jobs += 1
        return {"blob": BLOB[:-2] + "%02x" % (jobs % 256), "job_id": "J%d-%d" % (os.getpid(), jobs),
                "target": target(a.diff), "algo": "rx/0", "height": 3150000 + jobs, "seed_hash": SEED}
    def send(o):
        writer.write((json.dumps(o, separators=(",", ":")) + "\n").encode())
    async def pusher():
        while True:
            await asyncio.sleep(a.job_every * random.uniform(0.7, 1.3))
            send({"jsonrpc": "2.0", "method": "job", "params": job()})
            await writer.drain()
    task = None
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            try:
                m = json.loads(line)
            except ValueError:
                break
            meth, mid = m.get("method"), m.get("id")
            if meth == "login":
                send({"id": mid, "jsonrpc": "2.0", "error": None, "result": {"id": "%08x" % random.getrandbits(32),
                      "job": job(), "extensions": ["algo", "nicehash", "connect", "tls", "keepalive"], "status": "OK"}})
                if task is None:
                    task = asyncio.ensure_future(pusher())
            elif meth == "submit":
                send({"id": mid, "jsonrpc": "2.0", "error": None, "result": {"status": "OK"}})
            elif meth == "keepalived":
                send({"id": mid, "jsonrpc": "2.0", "error": None, "result": {"status": "KEEPALIVED"}})
            else:
                send({"id": mid, "jsonrpc": "2.0", "error": {"code": -1, "message": "unknown method"}})
            await writer.drain()
    finally:
        if task:
            task.cancel()
        writer.close()

async def main():
    p = argparse.ArgumentParser()
    p.add_argument("host"); p.add_argument("port", type=int)
    p.add_argument("--diff", type=int, default=200)
    p.add_argument("--job-every", type=float, default=20.0)
    a = p.parse_args()
    srv = await asyncio.start_server(lambda r, w: client(r, w, a), a.host, a.port)
    async with srv:
        await srv.serve_forever()

asyncio.run(main())
