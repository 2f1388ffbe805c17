# A scripted SMTP server for the outbound tests: what a remote MX does
# when it defers, refuses, or breaks STARTTLS, which no real peer does on
# demand.
import socket
import ssl
import threading
import time

import tegami_harness as th


class FakeMX:
    """An SMTP server on (ip, 25) in a thread, one connection at a time.

    rcpt_replies: the reply to RCPT on the n-th connection ("250 ..." or a
    4xx/5xx line), the last one on every later connection.
    starttls: None (not offered), "tls" (offered and done with cert and
    key), "refuse" (454 to STARTTLS) or "garbage" (220, then bytes that
    are no TLS record, then the connection closes).

    conns holds each connection's command lines in order, with "!TLS" when
    TLS started, "!TLSFAIL" when its handshake failed and "!Name" for an
    exception that ended it; messages holds each accepted content."""

    def __init__(self, ip, name, rcpt_replies=("250 2.1.5 ok",),
                 starttls=None, cert=None, key=None):
        self.name = name.encode()
        self.rcpt_replies = list(rcpt_replies)
        self.starttls = starttls
        self.ctx = None
        if starttls == "tls":
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(cert, key)
        self.conns = []
        self.messages = []
        self.tls_errors = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((ip, 25))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    @property
    def connections(self):
        return len(self.conns)

    def run(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            n = len(self.conns)
            cmds = []
            self.conns.append(cmds)
            reply = self.rcpt_replies[min(n, len(self.rcpt_replies) - 1)]
            try:
                conn.settimeout(th.HANG)
                self.serve(conn, cmds, reply)
            except (OSError, ssl.SSLError) as e:
                cmds.append("!" + type(e).__name__)
            finally:
                conn.close()

    def ehlo_reply(self):
        lines = [self.name] + ([b"STARTTLS"] if self.starttls else []) + \
            [b"8BITMIME"]
        return b"".join(b"250-" + l + b"\r\n" for l in lines[:-1]) + \
            b"250 " + lines[-1] + b"\r\n"

    def serve(self, conn, cmds, rcpt_reply):
        f = conn.makefile("rb")
        conn.sendall(b"220 " + self.name + b" ESMTP fake\r\n")
        data = None
        while True:
            line = f.readline()
            if not line:
                return
            if data is not None:
                if line == b".\r\n":
                    self.messages.append(b"".join(data))
                    data = None
                    conn.sendall(b"250 2.0.0 accepted\r\n")
                else:
                    data.append(line)
                continue
            cmd = line.strip().decode("latin-1")
            cmds.append(cmd)
            verb = cmd.split(" ")[0].upper()
            if verb == "EHLO":
                conn.sendall(self.ehlo_reply())
            elif verb == "STARTTLS" and self.starttls == "refuse":
                conn.sendall(b"454 4.7.0 TLS not available right now\r\n")
            elif verb == "STARTTLS" and self.starttls == "garbage":
                conn.sendall(b"220 2.0.0 go ahead\r\n")
                time.sleep(0.2)     # after the client's ClientHello
                conn.sendall(b"this is not a TLS record at all\r\n" * 4)
                time.sleep(0.5)
                return
            elif verb == "STARTTLS" and self.starttls == "tls":
                conn.sendall(b"220 2.0.0 go ahead\r\n")
                try:
                    conn = self.ctx.wrap_socket(conn, server_side=True)
                except (ssl.SSLError, OSError) as e:
                    self.tls_errors.append(str(e))
                    cmds.append("!TLSFAIL")
                    return
                cmds.append("!TLS")
                f = conn.makefile("rb")
            elif verb == "RCPT":
                conn.sendall(rcpt_reply.encode() + b"\r\n")
            elif verb == "DATA":
                data = []
                conn.sendall(b"354 go on\r\n")
            elif verb == "QUIT":
                conn.sendall(b"221 bye\r\n")
                return
            else:
                conn.sendall(b"250 ok\r\n")

    def close(self):
        self.stop.set()
        self.sock.close()
        self.thread.join(5)
