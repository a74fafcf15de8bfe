#!/usr/bin/env python3
"""Hostile peers for benches/adversarial/peers.sh: one process, one thread per connection.

TCP behaviours listen on 127.0.70.N:8000 (plain) or 127.0.72.N:8443 (TLS-shaped), DNS behaviours
on 127.0.71.N:5353 (UDP, and TCP for the truncation cases). Loopback only. Prints `ready` once
every socket is bound; runs until killed.
"""
import socket, ssl, struct, sys, threading, time

PEM_200, KEY = sys.argv[1], sys.argv[2]      # 200-certificate chain, and a self-signed leaf
LEAF = sys.argv[3]

def read_req(c):
    c.settimeout(5)
    try:
        c.recv(65536)
    except Exception:
        pass

def resp(c, head, body=b""):
    c.sendall(head + b"\r\n\r\n" + body)

def trickle(c, data, every=1.0):
    for b in data:
        c.sendall(bytes([b]))
        time.sleep(every)

def endless(c, chunk=b"x" * 4096, pause=0.0):
    c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    while True:
        c.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        if pause:
            time.sleep(pause)

HTTP = {
    "silent": lambda c: time.sleep(60),
    "rst": lambda c: (c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)), c.close()),
    "fin": lambda c: c.close(),
    "fin-after-read": lambda c: (read_req(c), c.close()),
    "garbage": lambda c: (c.sendall(bytes(range(256)) * 8), time.sleep(30)),
    "garbage-after-read": lambda c: (read_req(c), c.sendall(b"\x00\xff" * 3000), time.sleep(30)),
    "trickle-head": lambda c: (read_req(c), trickle(c, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")),
    "trickle-body": lambda c: (read_req(c), c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"), trickle(c, b"x" * 100)),
    "stall-body": lambda c: (read_req(c), c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc"), time.sleep(60)),
    "huge-headers": lambda c: (read_req(c), c.sendall(b"HTTP/1.1 200 OK\r\n" + b"X-A: b\r\n" * 200000)),
    "huge-header-line": lambda c: (read_req(c), c.sendall(b"HTTP/1.1 200 OK\r\nX-A: " + b"b" * 2000000 + b"\r\n\r\n")),
    "huge-body": lambda c: (read_req(c), c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n"), [c.sendall(b"y" * 65536) for _ in range(1600)]),
    "endless-chunked": lambda c: (read_req(c), endless(c)),
    "endless-chunked-slow": lambda c: (read_req(c), endless(c, b"z", 0.5)),
    "bad-chunk": lambda c: (read_req(c), c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n"), time.sleep(30)),
    "short-body": lambda c: (read_req(c), c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789"), c.close()),
    "no-status-line": lambda c: (read_req(c), c.sendall(b"<html>hello</html>\n"), c.close()),
    "status-999": lambda c: (read_req(c), resp(c, b"HTTP/1.1 999 Whatever\r\nContent-Length: 0")),
    "neg-length": lambda c: (read_req(c), resp(c, b"HTTP/1.1 200 OK\r\nContent-Length: -5", b"abc"), time.sleep(30)),
    "dup-length": lambda c: (read_req(c), resp(c, b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 9", b"abc"), time.sleep(30)),
    "continue-forever": lambda c: (read_req(c), [(c.sendall(b"HTTP/1.1 100 Continue\r\n\r\n"), time.sleep(0.05)) for _ in range(2000)]),
    "redirect": lambda c: (read_req(c), resp(c, b"HTTP/1.1 302 Found\r\nLocation: /\r\nContent-Length: 0")),
    "nginx-502": lambda c: (read_req(c), resp(c, b"HTTP/1.1 502 Bad Gateway\r\nServer: nginx\r\nContent-Length: 3", b"bad")),
    "traefik-404": lambda c: (read_req(c), resp(c, b"HTTP/1.1 404 Not Found\r\nContent-Length: 19", b"404 page not found\n")),
    "esc-body": lambda c: (read_req(c), resp(c, b"HTTP/1.1 200 OK\r\nContent-Length: 12", b"\x1b[2J\x1b]0;x\x07ok\x00\r")),
    "binary-header": lambda c: (read_req(c), resp(c, b"HTTP/1.1 200 OK\r\nX-B: \xff\xfe\x80\r\nContent-Length: 2", b"ok")),
    "slowloris-headers": lambda c: (read_req(c), c.sendall(b"HTTP/1.1 200 OK\r\n"), [(c.sendall(b"X-S: 1\r\n"), time.sleep(0.3)) for _ in range(200)]),
    "half-close": lambda c: (read_req(c), c.shutdown(socket.SHUT_WR), time.sleep(30)),
    "http2-preface": lambda c: (read_req(c), c.sendall(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"), time.sleep(30)),
    "ok": lambda c: (read_req(c), resp(c, b"HTTP/1.1 200 OK\r\nContent-Length: 3", b"ok\n")),
}

def tls_ctx(chain, key):
    t = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    t.load_cert_chain(chain, key)
    return t

CTX_LEAF = tls_ctx(LEAF, KEY)
CTX_200 = tls_ctx(PEM_200, KEY)

def tls_then(ctx, after, delay=0.0):
    def h(c):
        time.sleep(delay)
        s = ctx.wrap_socket(c, server_side=True)
        after(s)
    return h

TLS = {
    "tls-silent": lambda c: time.sleep(60),
    "tls-garbage": lambda c: (c.recv(1024), c.sendall(bytes(range(256)) * 4), time.sleep(30)),
    "tls-http400": lambda c: (c.recv(1024), resp(c, b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0"), c.close()),
    "tls-alert": lambda c: (c.recv(1024), c.sendall(b"\x15\x03\x03\x00\x02\x02\x28"), time.sleep(5)),
    "tls-huge-record": lambda c: (c.recv(1024), c.sendall(b"\x16\x03\x03\xff\xff" + b"\x00" * 65535), time.sleep(30)),
    "tls-trickle-hello": lambda c: (c.recv(1024), trickle(c, b"\x16\x03\x03\x00\x40" + b"\x02" * 64, 0.5)),
    "tls-rst": HTTP["rst"],
    "tls-fin": lambda c: (c.recv(1024), c.close()),
    "tls-200-chain": tls_then(CTX_200, lambda s: time.sleep(5)),
    "tls-ok": tls_then(CTX_LEAF, lambda s: (read_req(s), resp(s, b"HTTP/1.1 200 OK\r\nContent-Length: 3", b"ok\n"))),
    "tls-slow-handshake": tls_then(CTX_LEAF, lambda s: (read_req(s), time.sleep(0.8), resp(s, b"HTTP/1.1 200 OK\r\nContent-Length: 9", b"ok")), 0.6),
    "tls-trickle-body": tls_then(CTX_LEAF, lambda s: (read_req(s), s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n"), trickle(s, b"x" * 50))),
    "tls-endless-chunked": tls_then(CTX_LEAF, lambda s: (read_req(s), endless(s))),
    "tls-stall-after-handshake": tls_then(CTX_LEAF, lambda s: time.sleep(60)),
    "tls-close-after-handshake": tls_then(CTX_LEAF, lambda s: s.close()),
}

def serve_tcp(addr, port, handler):
    l = socket.socket()
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind((addr, port))
    l.listen(64)
    def run(c):
        try:
            handler(c)
        except Exception:
            pass
        finally:
            try:
                c.close()
            except Exception:
                pass
    def loop():
        while True:
            c, _ = l.accept()
            threading.Thread(target=run, args=(c,), daemon=True).start()
    threading.Thread(target=loop, daemon=True).start()

# ---- DNS ----------------------------------------------------------------------------------------

def qname_end(q):
    i = 12
    while q[i] != 0:
        i += q[i] + 1
    return i + 1 + 4              # zero label, qtype, qclass

def name(n):
    return b"".join(bytes([len(p)]) + p.encode() for p in n.split(".")) + b"\x00"

def a_rr(owner, ip, ttl=60):
    o = name(owner) if isinstance(owner, str) else owner
    return o + struct.pack(">HHIH", 1, 1, ttl, 4) + socket.inet_aton(ip)

def cname_rr(owner, target):
    t = name(target)
    return name(owner) + struct.pack(">HHIH", 5, 1, 60, len(t)) + t

def reply(q, rrs=(), rcode=0, tc=False, qd=None, an=None, qr=True):
    flags = (0x8000 if qr else 0) | 0x0100 | 0x0080 | (0x0200 if tc else 0) | rcode
    question = q[12:qname_end(q)] if qd is None else qd
    return q[:2] + struct.pack(">HHHHH", flags, 1, len(rrs) if an is None else an, 0, 0) + question + b"".join(rrs)

PTR = b"\xc0\x0c"                  # the question's name, by compression pointer
DNS = {
    "dns-silent": lambda q: None,
    "dns-echo": lambda q: q,
    "dns-garbage": lambda q: bytes(range(256)),
    "dns-short": lambda q: q[:5],
    "dns-wrong-id": lambda q: bytes([q[0] ^ 0xff, q[1]]) + reply(q, [a_rr(PTR, "127.0.0.9")])[2:],
    "dns-other-owner": lambda q: reply(q, [a_rr("evil.example.test", "127.0.0.9")]),
    "dns-big": lambda q: reply(q, [a_rr(PTR, "127.0.0.9") for _ in range(400)]),
    "dns-tc-tcp-silent": lambda q: reply(q, tc=True),
    "dns-tc-tcp-garbage": lambda q: reply(q, tc=True),
    "dns-tc-tcp-short": lambda q: reply(q, tc=True),
    "dns-other-question": lambda q: reply(q, [a_rr("other.example.test", "127.0.0.9")], qd=name("other.example.test") + b"\x00\x01\x00\x01"),
    "dns-ptr-loop": lambda q: reply(q, [b"\xc0" + bytes([len(q)]) + struct.pack(">HHIH", 1, 1, 60, 4) + b"\x7f\x00\x00\x09"]) + b"\xc0" + bytes([len(q) + 0]),
    "dns-rcode-15": lambda q: reply(q, rcode=15),
    "dns-ancount-lie": lambda q: reply(q, an=65535),
    "dns-nxdomain": lambda q: reply(q, rcode=3),
    "dns-servfail": lambda q: reply(q, rcode=2),
    "dns-qr0-then-answer": "special",
    "dns-wrong-then-answer": "special",
    "dns-cname-chain": lambda q: reply(q, [cname_rr("q.example.test", "alias.example.test"), a_rr("alias.example.test", "127.0.0.9")]),
    "dns-extra-owner-and-answer": lambda q: reply(q, [a_rr(PTR, "127.0.0.9"), a_rr("evil.example.test", "198.18.0.66")]),
    "dns-ok": lambda q: reply(q, [a_rr(PTR, "127.0.0.9")]),
}

def serve_dns(addr, kind):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind((addr, 5353))
    def loop():
        while True:
            q, peer = u.recvfrom(4096)
            try:
                h = DNS[kind]
                if h == "special":
                    first = q if kind == "dns-qr0-then-answer" else bytes([q[0] ^ 0xff, q[1]]) + q[2:]
                    u.sendto(first, peer)
                    time.sleep(0.05)
                    u.sendto(reply(q, [a_rr(PTR, "127.0.0.9")]), peer)
                    continue
                r = h(q)
                if r is not None:
                    u.sendto(r, peer)
            except Exception:
                pass
    threading.Thread(target=loop, daemon=True).start()
    if kind.startswith("dns-tc-tcp"):
        def tcp_handler(c):
            c.recv(4096)
            if kind == "dns-tc-tcp-garbage":
                c.sendall(b"\x00\x20" + bytes(range(32)))
            elif kind == "dns-tc-tcp-short":
                c.sendall(b"\xff\xff\x00\x01")
            time.sleep(30)
        serve_tcp(addr, 5353, tcp_handler)

def main():
    for i, k in enumerate(HTTP, start=1):
        serve_tcp(f"127.0.70.{i}", 8000, HTTP[k])
    for i, k in enumerate(DNS, start=1):
        serve_dns(f"127.0.71.{i}", k)
    for i, k in enumerate(TLS, start=1):
        serve_tcp(f"127.0.72.{i}", 8443, TLS[k])
    if len(sys.argv) > 4 and sys.argv[4] == "--list":
        for g, d in (("http", HTTP), ("dns", DNS), ("tls", TLS)):
            for i, k in enumerate(d, start=1):
                print(g, i, k)
    print("ready", flush=True)
    while True:
        time.sleep(3600)

main()
