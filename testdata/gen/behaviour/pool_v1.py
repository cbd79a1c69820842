#!/usr/bin/env python3
"""A minimal Stratum v1 (sha256d) pool for test captures: answers mining.subscribe and
mining.authorize, sets a low difficulty, sends mining.notify every --job-every seconds and
accepts every mining.submit. Test lab use only."""
import argparse, asyncio, json, os, random, time

async def client(reader, writer, a):
    n = 0
    def send(o):
        writer.write((json.dumps(o, separators=(",", ":")) + "\n").encode())
    def notify(clean):
        nonlocal n
        n += 1
        send({"id": None, "method": "mining.notify", "params": [
            "%x" % (0x1000 + n), os.urandom(32).hex(),
            "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff20" + os.urandom(8).hex(),
            "ffffffff0100f2052a010000001976a914" + os.urandom(20).hex() + "88ac00000000",
            [os.urandom(32).hex() for _ in range(random.randint(2, 6))],
            "20000000", "1d00ffff", "%08x" % int(time.time()), clean]})
    async def pusher():
        while True:
            await asyncio.sleep(a.job_every * random.uniform(0.7, 1.3))
            notify(False)
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
            if meth == "mining.subscribe":
                send({"id": mid, "result": [[["mining.set_difficulty", "d1"], ["mining.notify", "n1"]], os.urandom(4).hex(), 4], "error": None})
            elif meth == "mining.authorize":
                send({"id": mid, "result": True, "error": None})
                send({"id": None, "method": "mining.set_difficulty", "params": [a.diff]})
                notify(True)
                if task is None:
                    task = asyncio.ensure_future(pusher())
            elif meth == "mining.submit":
                send({"id": mid, "result": True, "error": None})
            else:
                send({"id": mid, "result": None, "error": [20, "unsupported", None]})
            await writer.drain()
    finally:
        if task:
            task.cancel()
        writer.close()

async def main():
    p = argparse.ArgumentParser()
    p.add_argument("host"); p.add_argument("port", type=int)
    p.add_argument("--diff", type=float, default=0.01)
    p.add_argument("--job-every", type=float, default=30.0)
    a = p.parse_args()
    srv = await asyncio.start_server(lambda r, w: client(r, w, a), a.host, a.port)
    async with srv:
        await srv.serve_forever()

asyncio.run(main())
