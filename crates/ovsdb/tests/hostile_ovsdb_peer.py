#!/usr/bin/env python3
"""A hostile OVSDB peer for nodedoc's tests (issue 8, item 4: bounded memory).

Usage: hostile_ovsdb_peer.py MODE SOCKET_PATH

Listens on a unix socket, prints "ready" on stdout once it does, and serves every connection
(each on its own thread) until killed:

  echo-flood     sends `echo` requests (1 kB each) as fast as it can and never reads a byte;
  huge-reply     answers the first request with a 120 MB reply (a result array of strings);
  costly-reply   answers the first request with a 4 MB reply of tiny objects ({"a":0}, …),
                 which takes about 360 MB once decoded into serde_json values;
  update-flood   answers get_schema with the real Open_vSwitch schema and list_dbs; to a
                 monitor/monitor_cond request it first sends 20,000 update notifications for
                 that monitor, then an empty initial state, then updates forever.

Each write goes out in large batches so Python is never the bottleneck; the peer stops
serving a connection when the client closes it (EPIPE/ECONNRESET).
"""

import json
import os
import socket
import sys
import threading

SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"
UUID = "3410a295-c0b5-42b9-b8cf-fc7944be60df"


def requests(conn):
    """Yields (id, method, params) of each request the client sends."""
    decoder = json.JSONDecoder()
    buffer = ""
    while True:
        chunk = conn.recv(1 << 16)
        if not chunk:
            return
        buffer += chunk.decode()
        while True:
            buffer = buffer.lstrip()
            if not buffer:
                break
            try:
                message, end = decoder.raw_decode(buffer)
            except ValueError:
                break
            buffer = buffer[end:]
            if message.get("method") is not None and message.get("id") is not None:
                yield message["id"], message["method"], message.get("params", [])


def send(conn, message):
    conn.sendall(json.dumps(message).encode())


def echo_flood(conn):
    # Each probe carries 1 kB, as `echo` may: every reply owed is as large.
    batch = b"".join(
        json.dumps({"id": "probe-%d" % i, "method": "echo", "params": ["x" * 1000]}).encode()
        for i in range(1000)
    )
    while True:
        conn.sendall(batch)


def huge_reply(conn):
    for request_id, _method, _params in requests(conn):
        conn.sendall(('{"id": %s, "error": null, "result": [' % json.dumps(request_id)).encode())
        item = ('"' + "x" * 998 + '",').encode()  # 1,000 bytes
        chunk = item * 1000  # 1 MB
        for _ in range(120):
            conn.sendall(chunk)
        conn.sendall(b'"end"]}')


def costly_reply(conn):
    for request_id, _method, _params in requests(conn):
        conn.sendall(('{"id": %s, "error": null, "result": [' % json.dumps(request_id)).encode())
        chunk = b'{"a":0},' * 125000  # 1 MB
        for _ in range(4):
            conn.sendall(chunk)
        conn.sendall(b'{}]}')


def update_flood(conn):
    with open(SCHEMA) as f:
        schema = json.load(f)
    for request_id, method, params in requests(conn):
        if method == "get_schema":
            send(conn, {"id": request_id, "result": schema, "error": None})
        elif method == "list_dbs":
            send(conn, {"id": request_id, "result": ["Open_vSwitch"], "error": None})
        elif method in ("monitor", "monitor_cond"):
            monitor_id = params[1]
            kind = "update2" if method == "monitor_cond" else "update"
            row = (
                {"modify": {"ofport": 7, "external_ids": ["map", [["k", "v" * 64]]]}}
                if kind == "update2"
                else {"new": {"ofport": 7}}
            )
            update = json.dumps(
                {"id": None, "method": kind, "params": [monitor_id, {"Interface": {UUID: row}}]}
            ).encode()
            batch = update * 1000
            for _ in range(20):
                conn.sendall(batch)
            initial = {"Open_vSwitch": {UUID: {"initial": {"bridges": ["set", []]}}}}
            if kind == "update":
                initial = {"Open_vSwitch": {UUID: {"new": {"bridges": ["set", []]}}}}
            send(conn, {"id": request_id, "result": initial, "error": None})
            while True:
                conn.sendall(batch)
        else:
            send(conn, {"id": request_id, "result": None, "error": {"error": "not here"}})


def serve(mode, conn):
    try:
        {
            "echo-flood": echo_flood,
            "huge-reply": huge_reply,
            "costly-reply": costly_reply,
            "update-flood": update_flood,
        }[mode](conn)
    except (BrokenPipeError, ConnectionResetError, OSError):
        pass
    finally:
        conn.close()


def main():
    mode, path = sys.argv[1], sys.argv[2]
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if os.path.exists(path):
        os.unlink(path)
    listener.bind(path)
    listener.listen(16)
    print("ready", flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(mode, conn), daemon=True).start()


if __name__ == "__main__":
    main()
