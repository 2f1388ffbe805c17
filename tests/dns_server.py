#!/usr/bin/python3
"""A scriptable authoritative DNS server for tests (UDP and TCP, RFC 1035
4.2, RFC 7766), answering from a small zone file.  Not a real server: one
process, no zone cuts, no DNSSEC signing.

Usage:
  /usr/bin/python3 tests/dns_server.py --listen 127.0.0.1 --port N \
      --zone FILE [--ttl SECONDS] [--log FILE]

--port 0 picks a free port (the same for UDP and TCP) and prints
"port N" before "ready".  "ready" is printed on stdout once both sockets
listen.  SIGTERM or SIGINT exits; SIGHUP rereads the zone file; the
server also exits when its parent process goes away.

Zone file: one entry a line, "#" starts a comment, names are
case-insensitive and may end in a dot.
  example.test MX 10 mx.example.test
  mx.example.test A 127.0.0.2
  mx.example.test AAAA ::1
  null.test MX 0 .
  _25._tcp.mx.example.test TLSA 3 1 1 <hex>
  alias.test CNAME example.test
  broken.test SERVFAIL          every query for the name gets SERVFAIL
  half.test SERVFAIL AAAA       only AAAA queries for the name do
  refused.test REFUSED          every query for the name gets REFUSED
  slow.test DELAY 1.5           answers for the name wait 1.5 s
  black.test DROP               queries for the name are never answered
  half.test DROP AAAA           only AAAA queries for the name are not
Any type dnslib knows (A, AAAA, MX, TXT, CNAME, TLSA, NS, SOA, DS,
DNSKEY, ...) can be given with its zone-file presentation.  Unknown names
get NXDOMAIN; a name that exists (or has names below it) without the
asked type gets NOERROR with no answer (NODATA).  UDP answers larger than
the query's EDNS size (512 without EDNS) are sent truncated (TC), so that
the client retries over TCP.

--log FILE appends one line per query: "QNAME QTYPE udp|tcp".
"""

import argparse
import os
import selectors
import signal
import socket
import struct
import sys
import threading

from dnslib import (DNSHeader, DNSLabel, DNSRecord, EDNS0, QTYPE, RCODE, RR,
                    RDMAP, SOA)


def norm(name):
    name = str(name).strip().lower()
    if name.endswith(".") and name != ".":
        name = name[:-1]
    return name


class Zone:
    def __init__(self, path, ttl):
        self.path = path
        self.ttl = ttl
        self.load()

    def load(self):
        records = {}      # name -> list of RR
        actions = {}      # (name, qtype or None) -> SERVFAIL|REFUSED|DROP
        delays = {}       # name -> seconds
        with open(self.path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                line = line.split("#", 1)[0].strip()
                if not line:
                    continue
                tokens = line.split()
                if len(tokens) < 2:
                    raise ValueError("%s:%d: want NAME TYPE [VALUE]"
                                     % (self.path, lineno))
                name, rtype = norm(tokens[0]), tokens[1].upper()
                rest = tokens[2:]
                if rtype in ("SERVFAIL", "REFUSED", "DROP"):
                    qtype = None
                    if rest:
                        qtype = getattr(QTYPE, rest[0].upper())
                    actions[(name, qtype)] = rtype
                    continue
                if rtype == "DELAY":
                    delays[name] = float(rest[0])
                    continue
                if rtype not in RDMAP:
                    raise ValueError("%s:%d: unknown type %s"
                                     % (self.path, lineno, rtype))
                # Names in values are absolute: add the dot dnslib wants.
                rest = [t if not self._is_name(rtype, i, t) or t.endswith(".")
                        else t + "." for i, t in enumerate(rest)]
                rdata = RDMAP[rtype].fromZone(rest)
                rr = RR(DNSLabel(name + "."), getattr(QTYPE, rtype), ttl=self.ttl,
                        rdata=rdata)
                records.setdefault(name, []).append(rr)
        self.records, self.actions, self.delays = records, actions, delays

    @staticmethod
    def _is_name(rtype, index, token):
        return ((rtype == "MX" and index == 1) or
                (rtype in ("CNAME", "NS", "PTR") and index == 0))

    def exists(self, name):
        if name in self.records or (name, None) in self.actions:
            return True
        suffix = "." + name
        return any(n.endswith(suffix) for n in self.records)


class Server:
    def __init__(self, args):
        self.zone = Zone(args.zone, args.ttl)
        self.zone_lock = threading.Lock()
        self.log = open(args.log, "a", encoding="utf-8") if args.log else None
        self.log_lock = threading.Lock()
        self.udp, self.tcp = self.bind(args.listen, args.port)

    @staticmethod
    def bind(address, port):
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        for _ in range(50):
            udp = socket.socket(family, socket.SOCK_DGRAM)
            udp.bind((address, port))
            chosen = udp.getsockname()[1]
            tcp = socket.socket(family, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                tcp.bind((address, chosen))
            except OSError:
                udp.close()
                tcp.close()
                if port != 0:
                    raise
                continue
            tcp.listen(64)
            return udp, tcp
        raise OSError("no free port for UDP and TCP together")

    def reload(self):
        with self.zone_lock:
            try:
                self.zone.load()
            except (OSError, ValueError) as e:
                print("reload failed: %s" % e, file=sys.stderr, flush=True)

    def note(self, qname, qtype, proto):
        if self.log is None:
            return
        with self.log_lock:
            self.log.write("%s %s %s\n" % (qname, qtype, proto))
            self.log.flush()

    def soa(self, qname):
        top = qname.rsplit(".", 1)[-1] if qname else ""
        apex = DNSLabel(top + ".") if top else DNSLabel(".")
        return RR(apex, QTYPE.SOA, ttl=self.zone.ttl,
                  rdata=SOA(apex.add("ns"), apex.add("hostmaster"),
                            (1, 3600, 600, 86400, self.zone.ttl)))

    def answer(self, data, proto):
        """Returns (delay seconds, reply bytes or None for no reply)."""
        try:
            query = DNSRecord.parse(data)
        except Exception:
            return 0, None
        if query.header.qr or not query.questions:
            return 0, None
        q = query.questions[0]
        qname = norm(q.qname) if str(q.qname) != "." else "."
        qtype = QTYPE.get(q.qtype, str(q.qtype))
        self.note(qname, qtype, proto)
        reply = query.reply(ra=1, aa=1)
        edns = [rr for rr in query.ar if rr.rtype == QTYPE.OPT]
        if edns:
            reply.add_ar(EDNS0(udp_len=1232))
        with self.zone_lock:
            zone = self.zone
            action = zone.actions.get((qname, q.qtype),
                                      zone.actions.get((qname, None)))
            delay = zone.delays.get(qname, 0)
            if action == "DROP":
                return 0, None
            if action == "SERVFAIL":
                reply.header.rcode = RCODE.SERVFAIL
            elif action == "REFUSED":
                reply.header.rcode = RCODE.REFUSED
            else:
                self.fill(zone, reply, qname, q.qtype)
        packed = reply.pack()
        if proto == "udp":
            limit = 512
            if edns:
                limit = max(512, min(edns[0].edns_len, 4096))
            if len(packed) > limit:
                trunc = DNSRecord(DNSHeader(id=reply.header.id, qr=1, aa=1,
                                            ra=1, tc=1,
                                            rd=query.header.rd),
                                  q=q)
                packed = trunc.pack()
        return delay, packed

    def fill(self, zone, reply, qname, qtype):
        seen = set()
        name = qname
        while True:
            rrs = zone.records.get(name, [])
            match = [rr for rr in rrs
                     if rr.rtype == qtype or qtype == QTYPE.ANY]
            if match:
                reply.add_answer(*match)
                return
            cname = [rr for rr in rrs if rr.rtype == QTYPE.CNAME]
            if cname and name not in seen:
                seen.add(name)
                reply.add_answer(cname[0])
                name = norm(cname[0].rdata.label)
                continue
            if not zone.exists(name):
                if name == qname:
                    reply.header.rcode = RCODE.NXDOMAIN
                reply.add_auth(self.soa(name))
                return
            reply.add_auth(self.soa(name))
            return

    def send_later(self, delay, fn):
        if delay > 0:
            t = threading.Timer(delay, fn)
            t.daemon = True
            t.start()
        else:
            fn()

    def on_udp(self):
        try:
            data, peer = self.udp.recvfrom(65535)
        except OSError:
            return
        delay, out = self.answer(data, "udp")
        if out is None:
            return

        def send():
            try:
                self.udp.sendto(out, peer)
            except OSError:
                pass
        self.send_later(delay, send)

    def on_tcp(self):
        try:
            conn, _ = self.tcp.accept()
        except OSError:
            return
        t = threading.Thread(target=self.serve_tcp, args=(conn,), daemon=True)
        t.start()

    def serve_tcp(self, conn):
        conn.settimeout(10)
        send_lock = threading.Lock()
        try:
            while True:
                head = self.recv_exact(conn, 2)
                if head is None:
                    return
                (length,) = struct.unpack("!H", head)
                data = self.recv_exact(conn, length)
                if data is None:
                    return
                delay, out = self.answer(data, "tcp")
                if out is None:
                    continue

                def send(out=out):
                    with send_lock:
                        try:
                            conn.sendall(struct.pack("!H", len(out)) + out)
                        except OSError:
                            pass
                self.send_later(delay, send)
        except OSError:
            return
        finally:
            conn.close()

    @staticmethod
    def recv_exact(conn, n):
        buf = b""
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--listen", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--zone", required=True)
    ap.add_argument("--ttl", type=int, default=60)
    ap.add_argument("--log")
    args = ap.parse_args()

    parent = os.getppid()
    server = Server(args)
    stop = threading.Event()
    hup = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGHUP, lambda *_: hup.set())

    sel = selectors.DefaultSelector()
    sel.register(server.udp, selectors.EVENT_READ, server.on_udp)
    sel.register(server.tcp, selectors.EVENT_READ, server.on_tcp)
    if args.port == 0:
        print("port %d" % server.udp.getsockname()[1])
    print("ready", flush=True)
    while not stop.is_set():
        if os.getppid() != parent:
            break
        if hup.is_set():
            hup.clear()
            server.reload()
        for key, _ in sel.select(timeout=0.2):
            key.data()
    server.udp.close()
    server.tcp.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
