# Item 7, socket abuse: python3 test/hostile/sockabuse.py SOCKET GHOSTD_PID
# (ghostd started by hand, e.g. build/ghostd -config c.json -socket /tmp/x/g.sock
# -metrics "" [-max-conns 500]). Prints ghostd's RSS along the way.
import socket, struct, sys, time, os
sock, pid = sys.argv[1], int(sys.argv[2])
def rss():
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS"): return int(l.split()[1]) // 1024
print("rss start MB", rss())
cs = []
for i in range(300):
    s = socket.socket(socket.AF_UNIX); s.connect(sock)
    s.sendall(struct.pack(">I", 1 << 20) + b"x")   # 1 MiB frame announced before hello
    cs.append(s)
time.sleep(1)
closed = 0
for s in cs:
    s.settimeout(2)
    try:
        d = s.recv(4096)
        while d: d = s.recv(4096)
        closed += 1
    except Exception: pass
print("pre-hello 1 MiB frames: closed by ghostd", closed, "of 300; rss MB", rss())
for s in cs: s.close()
# after hello: announce 1 MiB, send 10 KB, hold
hello_frame = bytes([0x82, 0xa1, ord('t'), 0xa5]) + b"hello" + bytes([0xa1, ord('v'), 0x01])
cs = []
for i in range(300):
    s = socket.socket(socket.AF_UNIX); s.connect(sock)
    s.sendall(struct.pack(">I", len(hello_frame)) + hello_frame); s.recv(4096)
    s.sendall(struct.pack(">I", 1 << 20) + b"x" * 10000)
    cs.append(s)
time.sleep(1)
print("post-hello 1 MiB announced, 10 KB sent, 300 conns: rss MB", rss())
# connection cap
extra = []
refused = 0
for i in range(1000):
    s = socket.socket(socket.AF_UNIX); s.connect(sock); extra.append(s)
time.sleep(0.5)
def count_closed(socks):
    n = 0
    for s in socks:
        s.setblocking(False)
        try:
            if s.recv(1) == b"": n += 1
        except BlockingIOError: pass
        except Exception: n += 1
    return n
print("1000 more connections without hello (300 open): closed within 0.5 s", count_closed(extra))
time.sleep(6)
print("... and within 6.5 s", count_closed(extra))
for s in cs + extra: s.close()
time.sleep(6)
print("all closed, 6 s later: rss MB", rss())
