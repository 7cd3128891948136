#!/usr/bin/env python3
"""A misbehaving ghostd for g12_badpeer.vtc: fakepeer.py SOCKET MODE.

MODE: version (hello refused with a version error), garbage (a route
answer that is not msgpack), huge (a frame length over 1 MiB), silent
(hello answered, route never), close (hello answered, route: close),
pending (a reload answered ok + pending when the request carries
"wait": 4000 ms, the default timeout less a second, for
g73_reload_pending.vtc; refused otherwise).
"""
import os
import socket
import struct
import sys
import threading


def enc(o):
    if isinstance(o, bool):
        return b"\xc3" if o else b"\xc2"
    if isinstance(o, int):
        return b"\xcf" + struct.pack(">Q", o)
    if isinstance(o, str):
        b = o.encode()
        return bytes([0xd9, len(b)]) + b
    if isinstance(o, dict):
        return bytes([0x80 | len(o)]) + b"".join(enc(k) + enc(v) for k, v in o.items())
    raise TypeError(o)


def frame(o):
    b = enc(o)
    return struct.pack(">I", len(b)) + b


def read_frame(c):
    h = b""
    while len(h) < 4:
        x = c.recv(4 - len(h))
        if not x:
            return None
        h += x
    n = struct.unpack(">I", h)[0]
    b = b""
    while len(b) < n:
        x = c.recv(n - len(b))
        if not x:
            return None
        b += x
    return b


def serve(c, mode):
    try:
        if read_frame(c) is None:
            return
        if mode == "version":
            c.sendall(frame({"t": "error", "gen": 1, "code": "version",
                             "msg": "protocol version mismatch: ghostd speaks 2, client sent 1"}))
            return
        c.sendall(frame({"t": "hello", "v": 1, "gen": 1, "server": "fakepeer"}))
        while True:
            req = read_frame(c)
            if req is None:
                return
            if mode == "pending":
                if b"\xa6reload" in req and b"\xa4wait\xcd\x0f\xa0" in req:
                    c.sendall(frame({"t": "reload", "gen": 7, "ok": True, "pending": True,
                                     "msg": "pending: /x/ghost.json still loading after 4s; generation 7 serves until it is done"}))
                else:
                    c.sendall(frame({"t": "reload", "gen": 7, "ok": False, "err": "no wait of 4000 ms in the request"}))
            elif mode == "garbage":
                c.sendall(struct.pack(">I", 3) + b"\xc1\xc1\xc1")
            elif mode == "huge":
                c.sendall(struct.pack(">I", 0xFFFFFFF0) + b"x" * 16)
            elif mode == "silent":
                threading.Event().wait(30)
            elif mode == "close":
                return
    finally:
        c.close()


def main():
    path, mode = sys.argv[1], sys.argv[2]
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    os.chmod(path, 0o666)
    s.listen(64)
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c, mode), daemon=True).start()


main()
