#!/usr/bin/python3
"""A scriptable fake SMTP server for tests/unit/test_smtp_client.c.

It listens on 127.0.0.1 (a free port), prints "ready PORT" on stdout, takes
one connection and answers each command as the JSON script says, recording
what it received: every command line with the number of the recv() that
brought it (so that pipelining can be checked), TLS events, and the exact
bytes of the message content (DATA up to and including the final ".";
BDAT: every chunk's octets so far, one "CHUNK n" record line each).
Python 3 standard library only.

Script keys (all optional):
  banner, ehlo, ehlo_tls (after TLS; default ehlo), helo, starttls, auth,
  auth_cont (list: replies to the lines after AUTH), mail, rcpt (a reply,
  or {"address": reply, "*": default}), data, final, rset, quit, noop,
  unknown: the reply to each command.  bdat: the reply to every BDAT
  chunk but the LAST one (default 250), which gets final.
  implicit_tls: TLS from the first byte.  rcvbuf: SO_RCVBUF.
  chunk: send every reply in pieces of this many bytes (1: byte by byte),
  with "pace" seconds between pieces (default 0.0005).
A reply is a string (one line), a list of lines, null (no reply), or an
object: {"lines": [...]} or {"raw": "exact bytes as latin-1"} or
{"parts": [["text", count], ...]}, with optional "delay" (seconds before),
"chunk", "pace", "tls": false (STARTTLS: do not start TLS after a 220), and
"after": "close" (close the connection), "hang" (read on, never answer
again) or "stall" (stop reading altogether).
"""

import argparse
import json
import signal
import socket
import ssl
import sys
import time

LIFETIME_SECONDS = 60


class Done(Exception):
    pass


class Peer:
    def __init__(self, args, script):
        self.script = script
        self.rec = open(args.record, "w", encoding="latin-1", buffering=1)
        self.data_path = args.data
        self.cert = args.cert
        self.key = args.key
        self.buf = b""
        self.batch = 0
        self.conn = None
        self.tls = False
        self.sni = None
        self.silent = False
        self.auth_cont = []
        self.bdat = b""

    def log(self, text):
        self.rec.write(text + "\n")

    # I/O

    def recv_more(self):
        try:
            got = self.conn.recv(65536)
        except (ConnectionError, ssl.SSLError, OSError) as e:
            self.log("RECVERR %s" % type(e).__name__)
            raise Done()
        if not got:
            self.log("EOF")
            raise Done()
        self.batch += 1
        self.buf += got

    def readline(self):
        while b"\n" not in self.buf:
            self.recv_more()
        line, self.buf = self.buf.split(b"\n", 1)
        return line + b"\n"

    def send(self, data, chunk, pace):
        try:
            if not chunk:
                self.conn.sendall(data)
                return
            for i in range(0, len(data), chunk):
                self.conn.sendall(data[i:i + chunk])
                time.sleep(pace)
        except (ConnectionError, ssl.SSLError, OSError) as e:
            self.log("SENDERR %s" % type(e).__name__)
            raise Done()

    def reply(self, spec):
        """Sends a reply; returns the spec as a dict for follow-ups."""
        if spec is None:
            return {}
        if isinstance(spec, str):
            spec = {"lines": [spec]}
        elif isinstance(spec, list):
            spec = {"lines": spec}
        if spec.get("delay"):
            time.sleep(spec["delay"])
        data = b""
        if "lines" in spec:
            data = b"".join(l.encode("latin-1") + b"\r\n"
                            for l in spec["lines"])
        elif "raw" in spec:
            data = spec["raw"].encode("latin-1")
        elif "parts" in spec:
            data = b"".join(t.encode("latin-1") * n for t, n in spec["parts"])
        if data:
            self.send(data, spec.get("chunk", self.script.get("chunk", 0)),
                      spec.get("pace", 0.0005))
        after = spec.get("after")
        if after == "close":
            self.log("CLOSE")
            try:
                self.conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            raise Done()
        if after == "hang":
            self.silent = True
        elif after == "stall":
            self.log("STALL")
            time.sleep(LIFETIME_SECONDS)
            raise Done()
        return spec

    # TLS

    def start_tls(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, self.key)

        def sni_cb(sslobj, name, context):
            self.sni = name

        ctx.sni_callback = sni_cb
        if self.buf:
            self.log("PRETLS %d" % len(self.buf))
            self.buf = b""
        try:
            self.conn = ctx.wrap_socket(self.conn, server_side=True)
        except (ssl.SSLError, OSError) as e:
            self.log("TLSFAIL sni=%s %s" % (self.sni,
                                             str(e).replace("\n", " ")))
            raise Done()
        self.tls = True
        self.log("TLS %s sni=%s" % (self.conn.version(), self.sni))

    # The session

    def read_data(self):
        scanned = 0
        while True:
            if self.buf.startswith(b".\r\n"):
                stop = 3
                break
            i = self.buf.find(b"\r\n.\r\n", scanned)
            if i >= 0:
                stop = i + 5
                break
            scanned = max(0, len(self.buf) - 4)
            self.recv_more()
        data, self.buf = self.buf[:stop], self.buf[stop:]
        with open(self.data_path, "wb") as f:
            f.write(data)
        self.log("DATA %d" % len(data))

    def read_chunk(self, n):
        """RFC 3030 2: exactly n octets follow the BDAT line."""
        while len(self.buf) < n:
            self.recv_more()
        self.bdat += self.buf[:n]
        self.buf = self.buf[n:]
        with open(self.data_path, "wb") as f:
            f.write(self.bdat)
        self.log("CHUNK %d" % n)

    def command(self, raw):
        if raw.endswith(b"\r\n"):
            text = raw[:-2].decode("latin-1")
        else:
            text = "!BARELF " + repr(raw)
        self.log("C%d: %s" % (self.batch, text))
        if self.silent:
            return
        s = self.script
        if self.auth_cont:
            self.reply(self.auth_cont.pop(0))
            return
        verb = text.split(" ", 1)[0].upper()
        if verb == "EHLO":
            ehlo = s.get("ehlo", ["250-peer.test", "250 8BITMIME"])
            self.reply(s.get("ehlo_tls", ehlo) if self.tls else ehlo)
        elif verb == "HELO":
            self.reply(s.get("helo", "250 peer.test"))
        elif verb == "STARTTLS":
            spec = self.reply(s.get("starttls", "220 2.0.0 go ahead"))
            first = (spec.get("lines") or [spec.get("raw", "")])[0] \
                if spec else ""
            if first.startswith("220") and spec.get("tls", True):
                self.start_tls()
        elif verb == "AUTH":
            self.auth_cont = list(s.get("auth_cont", []))
            self.reply(s.get("auth", "235 2.7.0 ok"))
        elif verb == "MAIL":
            self.reply(s.get("mail", "250 2.1.0 ok"))
        elif verb == "RCPT":
            r = s.get("rcpt", "250 2.1.5 ok")
            if isinstance(r, dict) and "lines" not in r and "raw" not in r \
                    and "parts" not in r:
                addr = text[text.find("<") + 1:text.rfind(">")]
                r = r.get(addr, r.get("*", "250 2.1.5 ok"))
            self.reply(r)
        elif verb == "DATA":
            spec = self.reply(s.get("data", "354 go ahead"))
            first = (spec.get("lines") or [spec.get("raw", "")])[0] \
                if spec else ""
            if first.startswith("354"):
                self.read_data()
                self.reply(s.get("final", "250 2.0.0 queued"))
        elif verb == "BDAT":
            args = text.split(" ")
            if len(args) not in (2, 3) or not args[1].isdigit() or \
                    (len(args) == 3 and args[2].upper() != "LAST"):
                self.reply(s.get("unknown", "501 5.5.4 bad BDAT"))
                return
            self.read_chunk(int(args[1]))
            if len(args) == 3:
                self.reply(s.get("final", "250 2.0.0 queued"))
            else:
                self.reply(s.get("bdat", "250 2.0.0 %s octets" % args[1]))
        elif verb == "RSET":
            self.reply(s.get("rset", "250 2.0.0 ok"))
        elif verb == "NOOP":
            self.reply(s.get("noop", "250 2.0.0 ok"))
        elif verb == "QUIT":
            self.reply(s.get("quit", "221 2.0.0 bye"))
            if not self.silent:
                raise Done()
        elif text == ".":
            # A lone dot outside DATA: what a client sends after a 354
            # that came although every RCPT failed (RFC 2920 3.1).
            self.reply(s.get("final", "250 2.0.0 queued"))
        else:
            self.reply(s.get("unknown", "500 5.5.1 unknown command"))

    def run(self, conn):
        self.conn = conn
        if self.script.get("implicit_tls"):
            self.start_tls()
        self.reply(self.script.get("banner", "220 peer.test ESMTP"))
        while True:
            line = self.readline()
            self.command(line)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--script", required=True)
    ap.add_argument("--record", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    args = ap.parse_args()
    with open(args.script, encoding="utf-8") as f:
        script = json.load(f)
    signal.alarm(LIFETIME_SECONDS)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if script.get("rcvbuf"):
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, script["rcvbuf"])
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    sys.stdout.write("ready %d\n" % ls.getsockname()[1])
    sys.stdout.flush()
    conn, _ = ls.accept()
    ls.close()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    peer = Peer(args, script)
    peer.log("CONNECT")
    try:
        peer.run(conn)
    except Done:
        pass
    finally:
        peer.log("END")
        try:
            peer.conn.close()
        except OSError:
            pass


if __name__ == "__main__":
    main()
