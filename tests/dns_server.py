#!/usr/bin/python3
"""A scriptable authoritative DNS server for tests (UDP and TCP, RFC 1035
4.2, RFC 7766), answering from a small zone file.  Not a real server: one
process, no zone cuts, no DNSSEC signing.

Usage:
  /usr/bin/python3 tests/dns_server.py --listen 127.0.0.1 --port N \
      --zone FILE [--ttl SECONDS] [--log FILE] \
      [--sign APEX --anchor-out FILE]

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

--sign APEX signs the names at and below APEX (RFC 4034/4035) with a new
ECDSA P-256 key (algorithm 13, made with the openssl command), serves its
DNSKEY at APEX and writes "APEX. IN DNSKEY 257 3 13 ..." to --anchor-out,
the trust anchor a validating client needs.  Signatures go to queries
with the EDNS DO bit.  Answers and NODATA (an NSEC at the name) validate
as secure; NXDOMAIN carries no proof, so a validator finds it bogus.  The
directive "name BADSIG [TYPE]" spoils the signatures over the name's
records (of that type only, when given).
"""

import argparse
import base64
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

from dnslib import (DNSBuffer, DNSHeader, DNSKEY, DNSLabel, DNSRecord, EDNS0,
                    NSEC, QTYPE, RCODE, RR, RDMAP, RRSIG, SOA)


def norm(name):
    name = str(name).strip().lower()
    if name.endswith(".") and name != ".":
        name = name[:-1]
    return name


class CanonicalBuffer(DNSBuffer):
    """Packs names uncompressed, as RFC 4034 6.2 wants for signing."""

    def encode_name(self, name):
        self.encode_name_nocompress(name)


def wire(name):
    buf = CanonicalBuffer()
    buf.encode_name_nocompress(DNSLabel(str(name).lower()))
    return buf.data


def run(argv, data=None):
    return subprocess.run(argv, input=data, stdout=subprocess.PIPE,
                          check=True).stdout


class Signer:
    """One key (KSK and ZSK at once) signing the RRsets under apex."""

    def __init__(self, apex, ttl):
        self.apex = norm(apex)
        self.ttl = ttl
        self.dir = tempfile.mkdtemp(prefix="dns_server.")
        self.key = os.path.join(self.dir, "key.pem")
        run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-out", self.key])
        spki = run(["openssl", "pkey", "-in", self.key, "-pubout",
                    "-outform", "DER"])
        self.pub = spki[-64:]       # the point's X and Y
        rdata = struct.pack("!HBB", 257, 3, 13) + self.pub
        acc = 0                     # RFC 4034 appendix B
        for i, b in enumerate(rdata):
            acc += b if i & 1 else b << 8
        acc += (acc >> 16) & 0xFFFF
        self.key_tag = acc & 0xFFFF
        now = int(time.time())
        self.inception = now - 3600
        self.expiration = now + 30 * 86400
        self.cache = {}
        self.lock = threading.Lock()

    def close(self):
        for f in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, f))
        os.rmdir(self.dir)

    def covers(self, name):
        return name == self.apex or name.endswith("." + self.apex)

    def dnskey(self):
        return RR(DNSLabel(self.apex + "."), QTYPE.DNSKEY, ttl=self.ttl,
                  rdata=DNSKEY(257, 3, 13, self.pub))

    def anchor(self):
        return "%s. IN DNSKEY 257 3 13 %s\n" % (
            self.apex, base64.b64encode(self.pub).decode())

    def sign(self, rrs, spoil=False):
        owner = rrs[0].rname
        labels = [l for l in owner.label]
        if labels and labels[0] == b"*":
            labels = labels[1:]
        rtype, ttl = rrs[0].rtype, rrs[0].ttl
        head = struct.pack("!HBBIIIH", rtype, 13, len(labels), ttl,
                           self.expiration, self.inception,
                           self.key_tag) + wire(self.apex + ".")
        rdatas = []
        for rr in rrs:
            buf = CanonicalBuffer()
            rr.rdata.pack(buf)
            rdatas.append(bytes(buf.data))
        data = head + b"".join(
            wire(owner) + struct.pack("!HHIH", rtype, 1, ttl, len(rd)) + rd
            for rd in sorted(set(rdatas)))
        with self.lock:
            sig = self.cache.get(data)
            if sig is None:
                sig = self.ecdsa(data)
                self.cache[data] = sig
        if spoil:
            sig = bytes([sig[0] ^ 0xFF]) + sig[1:]
        return RR(owner, QTYPE.RRSIG, ttl=ttl,
                  rdata=RRSIG(rtype, 13, len(labels), ttl, self.expiration,
                              self.inception, self.key_tag,
                              self.apex + ".", sig))

    def ecdsa(self, data):
        der = run(["openssl", "dgst", "-sha256", "-sign", self.key], data)
        # SEQUENCE { INTEGER r, INTEGER s } to r || s, 32 octets each.
        pos, out = 2, b""
        if der[1] & 0x80:
            pos += der[1] & 0x7F
        for _ in range(2):
            length = der[pos + 1]
            value = int.from_bytes(der[pos + 2:pos + 2 + length], "big")
            out += value.to_bytes(32, "big")
            pos += 2 + length
        return out


class Zone:
    def __init__(self, path, ttl, signer=None):
        self.path = path
        self.ttl = ttl
        self.signer = signer
        self.load()

    def load(self):
        records = {}      # name -> list of RR
        actions = {}      # (name, qtype or None) -> SERVFAIL|REFUSED|DROP
        spoiled = set()   # (name, qtype or None): signatures spoiled
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
                if rtype == "BADSIG":
                    qtype = None
                    if rest:
                        qtype = getattr(QTYPE, rest[0].upper())
                    spoiled.add((name, qtype))
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
                if self.signer is not None:
                    # Signed data is canonical: names in RDATA lowercased.
                    rest = [t.lower() if self._is_name(rtype, i, t) else t
                            for i, t in enumerate(rest)]
                rdata = RDMAP[rtype].fromZone(rest)
                rr = RR(DNSLabel(name + "."), getattr(QTYPE, rtype), ttl=self.ttl,
                        rdata=rdata)
                records.setdefault(name, []).append(rr)
        if self.signer is not None:
            records.setdefault(self.signer.apex, []).append(
                self.signer.dnskey())
        self.records, self.actions, self.delays = records, actions, delays
        self.spoiled = spoiled

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
        self.signer = Signer(args.sign, args.ttl) if args.sign else None
        if self.signer is not None and args.anchor_out:
            with open(args.anchor_out, "w", encoding="ascii") as f:
                f.write(self.signer.anchor())
        self.zone = Zone(args.zone, args.ttl, self.signer)
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
        if self.signer is not None and self.signer.covers(qname):
            top = self.signer.apex
        apex = DNSLabel(top + ".") if top else DNSLabel(".")
        return RR(apex, QTYPE.SOA, ttl=self.zone.ttl,
                  rdata=SOA(apex.add("ns"), apex.add("hostmaster"),
                            (1, 3600, 600, 86400, self.zone.ttl)))

    def answer(self, data, proto):
        """Returns (delay seconds, reply bytes or None for no reply)."""
        try:
            return self.answer_or_raise(data, proto)
        except Exception:
            # A bug here must show, but not stop the server.
            traceback.print_exc()
            return 0, None

    def answer_or_raise(self, data, proto):
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
                do = bool(edns) and edns[0].edns_do
                self.fill(zone, reply, qname, q.qtype, do)
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

    def fill(self, zone, reply, qname, qtype, do):
        seen = set()
        name = qname

        def signed(rrs, owner):
            if (do and self.signer is not None and
                    self.signer.covers(owner)):
                spoil = ((owner, None) in zone.spoiled or
                         (owner, rrs[0].rtype) in zone.spoiled)
                return [self.signer.sign(rrs, spoil)]
            return []

        while True:
            rrs = zone.records.get(name, [])
            match = [rr for rr in rrs
                     if rr.rtype == qtype or qtype == QTYPE.ANY]
            if match:
                reply.add_answer(*match)
                reply.add_answer(*signed(match, name))
                return
            cname = [rr for rr in rrs if rr.rtype == QTYPE.CNAME]
            if cname and name not in seen:
                seen.add(name)
                reply.add_answer(cname[0])
                reply.add_answer(*signed(cname[:1], name))
                name = norm(cname[0].rdata.label)
                continue
            soa = self.soa(name)
            reply.add_auth(soa)
            reply.add_auth(*signed([soa], norm(soa.rname)))
            if not zone.exists(name):
                if name == qname:
                    reply.header.rcode = RCODE.NXDOMAIN
                return
            if do and self.signer is not None and self.signer.covers(name):
                # NODATA proof: an NSEC at the name without the type,
                # its next name the name's first possible child.
                types = sorted({QTYPE.get(rr.rtype) for rr in rrs} |
                               {"RRSIG", "NSEC"})
                label = DNSLabel(name + ".")
                nsec = RR(label, QTYPE.NSEC, ttl=zone.ttl,
                          rdata=NSEC(DNSLabel((b"\x00",) + label.label),
                                     types))
                reply.add_auth(nsec)
                reply.add_auth(*signed([nsec], name))
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
    ap.add_argument("--sign", metavar="APEX")
    ap.add_argument("--anchor-out", metavar="FILE")
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
    if server.signer is not None:
        server.signer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
