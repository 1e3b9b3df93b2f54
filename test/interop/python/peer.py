"""Python `websockets` (asyncio API, 10.x) as an interoperability peer for Sockeye.

One process serves a whole test file. It starts two echo servers on
127.0.0.1 (permessage-deflate off and on) and prints one JSON line with
their ports when they listen. After that it reads commands from stdin, one
JSON object per line, and answers each with a JSON line carrying the same
"id". Commands run concurrently; each has a deadline, so a stuck peer
produces an error answer instead of a hang. Server-side happenings are
reported as {"event": ...} lines. EOF on stdin ends the process.

Server paths:
  /echo...                echo every message as received
  /fragment...            echo every message split into several fragments
  /close/<code>/<reason>  close at once with that code and (URL-encoded) reason
A query string is ignored; tests use it to tell connections apart in events.

Client commands (op): open, echo, burst, ping, recv, close, wait_closed.
"""

import asyncio
import hashlib
import json
import random
import sys
import time
from urllib.parse import unquote, urlsplit

import websockets

# Mixed-width characters: 1, 2, 3 and 4 bytes in UTF-8.
ALPHABET = "abcXYZ019 .,\u00e9\u00df\u00f1\u03bb\u0436\u20ac\u4e2d\u6587\U0001f600\U0001f980\U00010348"

DEADLINE = 30.0
connections = {}
next_connection = 0


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def text_payload(size, seed):
    """A str whose UTF-8 encoding is exactly `size` bytes, multi-byte characters throughout."""
    rng = random.Random(seed)
    block = "".join(rng.choice(ALPHABET) for _ in range(4099)).encode("utf-8")
    raw = (block * (size // len(block) + 1))[:size]
    text = raw.decode("utf-8", errors="ignore")  # drops only a character cut at the end
    return text + "a" * (size - len(text.encode("utf-8")))


def binary_payload(size, seed):
    return random.Random(seed).randbytes(size)


def as_bytes(message):
    return message.encode("utf-8") if isinstance(message, str) else bytes(message)


def sha256(message):
    return hashlib.sha256(as_bytes(message)).hexdigest()


def pieces(message, count):
    """Split into `count` consecutive pieces (some may be empty): what send() fragments."""
    step = -(-len(message) // count)
    return [message[i * step:(i + 1) * step] for i in range(count)]


def describe(ws, headers):
    return {
        "subprotocol": ws.subprotocol,
        "extensions": [ext.name for ext in ws.extensions],
        "extensions_header": headers.get("Sec-WebSocket-Extensions"),
    }


async def serve_connection(ws):
    path = ws.path
    emit({"event": "server-open", "path": path, "headers": dict(ws.request_headers.raw_items()),
          **describe(ws, ws.response_headers)})
    try:
        if path.startswith("/close/"):
            _, _, code, reason = urlsplit(path).path.split("/", 3)
            await ws.close(int(code), unquote(reason))
        else:
            fragment = path.startswith("/fragment")
            async for message in ws:
                await ws.send(pieces(message, 4) if fragment else message)
    except websockets.ConnectionClosed:
        pass
    await ws.wait_closed()
    emit({"event": "server-close", "path": path, "code": ws.close_code, "reason": ws.close_reason})


async def cmd_open(cmd):
    global next_connection
    ws = await websockets.connect(
        cmd["url"],
        compression=cmd.get("compression"),
        subprotocols=cmd.get("subprotocols"),
        origin=cmd.get("origin"),
        max_size=None,
        max_queue=None,
        ping_interval=None,
        open_timeout=10,
        close_timeout=5,
    )
    next_connection += 1
    connections[next_connection] = ws
    return {"conn": next_connection, **describe(ws, ws.response_headers)}


async def cmd_echo(cmd):
    ws = connections[cmd["conn"]]
    size, seed = cmd["size"], cmd.get("seed", 1)
    message = text_payload(size, seed) if cmd["kind"] == "text" else binary_payload(size, seed)
    fragments = cmd.get("fragments", 0)
    await ws.send(pieces(message, fragments) if fragments > 0 else message)
    echoed = await ws.recv()
    return {
        "sent_sha": sha256(message),
        "sent_len": len(as_bytes(message)),
        "recv_kind": "text" if isinstance(echoed, str) else "binary",
        "recv_len": len(as_bytes(echoed)),
        "equal": echoed == message,
    }


async def cmd_burst(cmd):
    ws = connections[cmd["conn"]]
    count = cmd["count"]
    for i in range(count):
        await ws.send(f"burst {i}")
    received = [await ws.recv() for _ in range(count)]
    return {"received": received}


async def cmd_ping(cmd):
    ws = connections[cmd["conn"]]
    rtts = []
    for i in range(cmd["count"]):
        started = time.perf_counter()
        waiter = await ws.ping(f"py-{i}".encode())
        await waiter
        rtts.append((time.perf_counter() - started) * 1000)
    return {"rtts": rtts}


async def cmd_recv(cmd):
    message = await connections[cmd["conn"]].recv()
    return {"kind": "text" if isinstance(message, str) else "binary", "data": as_bytes(message).decode("latin-1")}


async def cmd_close(cmd):
    ws = connections.pop(cmd["conn"])
    await ws.close(cmd.get("code", 1000), cmd.get("reason", ""))
    await ws.wait_closed()
    return {"code": ws.close_code, "reason": ws.close_reason}


async def cmd_wait_closed(cmd):
    ws = connections.pop(cmd["conn"])
    await ws.wait_closed()
    return {"code": ws.close_code, "reason": ws.close_reason}


COMMANDS = {
    "open": cmd_open,
    "echo": cmd_echo,
    "burst": cmd_burst,
    "ping": cmd_ping,
    "recv": cmd_recv,
    "close": cmd_close,
    "wait_closed": cmd_wait_closed,
}


async def run(cmd):
    try:
        result = await asyncio.wait_for(COMMANDS[cmd["op"]](cmd), cmd.get("timeout", DEADLINE))
        emit({"id": cmd["id"], "ok": True, **result})
    except BaseException as error:  # every failure becomes an answer, never a hang
        emit({"id": cmd.get("id"), "ok": False, "error": f"{type(error).__name__}: {error}"})


async def main():
    servers = {}
    for name, compression in (("plain", None), ("deflate", "deflate")):
        servers[name] = await websockets.serve(
            serve_connection,
            "127.0.0.1",
            0,
            compression=compression,
            subprotocols=["chat.v2", "chat.v1"],
            max_size=None,
            max_queue=None,
            ping_interval=None,
            close_timeout=5,
        )
    emit({"ready": True, "version": websockets.__version__,
          "ports": {name: server.sockets[0].getsockname()[1] for name, server in servers.items()}})

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    tasks = set()
    while True:
        line = await reader.readline()
        if not line:
            break
        task = asyncio.create_task(run(json.loads(line)))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    for server in servers.values():
        server.close()
    await asyncio.wait_for(asyncio.gather(*(server.wait_closed() for server in servers.values())), 5)


if __name__ == "__main__":
    asyncio.run(main())
