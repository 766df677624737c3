#!/usr/bin/env python3
"""A real SMTP server (aiosmtpd) for the vowguard-email integration tests.

Listens on 127.0.0.1 on a free port and prints "READY <port>" once it accepts
connections. Each received message is written to --dir as:

  <n>.eml   the raw message as received (after DATA)
  <n>.json  {"mail_from", "rcpt_tos", "tls", "authenticated", "login",
             "headers": [[name, value], ...] (decoded, in order),
             "content_type", "is_multipart", "defects": [...],
             "parts": [{"content_type", "charset", "content"}, ...]}

parsed with Python's standard email package (policy=default), so the tests check the
message as an independent MIME parser sees it. Files are renamed into place only
when complete, before the server answers 250 to DATA.

RCPT TO:<unknown-mailbox@...> is answered 550, RCPT TO:<busy-mailbox@...> 451.

Modes (--mode):
  plain     no TLS at all (STARTTLS not offered)
  starttls  STARTTLS offered and required before MAIL (require_starttls=True)
  tls       implicit TLS from the first byte (ssl_context on the Controller)

--auth USER:PASSWORD requires AUTH (PLAIN/LOGIN) with exactly these credentials;
in starttls/tls mode AUTH is only accepted over TLS (auth_require_tls=True).

The server stops on SIGTERM/SIGINT or when its standard input closes (so it never
outlives the test process that started it).
"""

import argparse
import asyncio
import email
import email.policy
import json
import os
import signal
import socket
import ssl
import sys
import threading
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Recorder:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        # Recipients whose local part says so get a failure reply, to test error mapping.
        local = address.split("@", 1)[0].lower()
        if local == "unknown-mailbox":
            return "550 5.1.1 Mailbox unavailable"
        if local == "busy-mailbox":
            return "451 4.3.0 Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        with self.lock:
            self.count += 1
            n = self.count
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        parts = []
        for part in msg.walk():
            if part.is_multipart():
                continue
            try:
                content = part.get_content()
            except Exception as exc:  # report, do not crash the server
                content = "<undecodable: %s>" % exc
            if isinstance(content, bytes):
                content = content.decode("utf-8", "replace")
            parts.append(
                {
                    "content_type": part.get_content_type(),
                    "charset": part.get_content_charset(),
                    "content": content,
                }
            )
        summary = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            # session.ssl covers STARTTLS only; the transport knows about implicit TLS too.
            "tls": server.transport.get_extra_info("ssl_object") is not None
            or session.ssl is not None,
            "authenticated": bool(session.authenticated),
            "login": _login(session),
            "headers": [[name, str(value)] for name, value in msg.items()],
            "content_type": msg.get_content_type(),
            "is_multipart": msg.is_multipart(),
            "defects": [repr(d) for d in msg.defects],
            "parts": parts,
        }
        _write(os.path.join(self.directory, "%d.eml" % n), raw)
        _write(
            os.path.join(self.directory, "%d.json" % n),
            json.dumps(summary, indent=1).encode("utf-8"),
        )
        return "250 Message accepted for delivery"


def _login(session):
    data = session.auth_data
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return None


def _write(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        )
        login = auth_data.login if isinstance(auth_data, LoginPassword) else None
        return AuthResult(success=ok, handled=False, auth_data=login)

    return check


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    # aiosmtpd warns about AUTH without TLS (intended in plain mode) and about its own
    # deprecated login_data; neither helps a test log.
    warnings.simplefilter("ignore")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True)
    parser.add_argument("--mode", choices=["plain", "starttls", "tls"], default="plain")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--auth", help="USER:PASSWORD")
    args = parser.parse_args()

    context = None
    if args.mode != "plain":
        if not (args.cert and args.key):
            parser.error("--cert and --key are required for --mode %s" % args.mode)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)

    smtp_kwargs = {}
    if args.auth:
        user, _, password = args.auth.partition(":")
        smtp_kwargs["authenticator"] = authenticator(user, password)
        smtp_kwargs["auth_required"] = True
        # aiosmtpd only counts STARTTLS as TLS for auth_require_tls; with implicit TLS
        # every byte is encrypted anyway.
        smtp_kwargs["auth_require_tls"] = args.mode == "starttls"
    else:
        smtp_kwargs["auth_require_tls"] = False
    if args.mode == "starttls":
        smtp_kwargs["tls_context"] = context
        smtp_kwargs["require_starttls"] = True

    handler = Recorder(args.dir)
    controller = None
    last_error = None
    for _ in range(20):
        port = free_port()
        controller = Controller(
            handler,
            hostname="127.0.0.1",
            port=port,
            ssl_context=context if args.mode == "tls" else None,
            server_hostname="localhost",
            **smtp_kwargs,
        )
        try:
            controller.start()
            break
        except OSError as exc:  # port taken between free_port() and bind: try another
            last_error = exc
            controller = None
    if controller is None:
        print("FAILED %s" % last_error, flush=True)
        sys.exit(1)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    def watch_stdin():
        try:
            while sys.stdin.buffer.read(4096):
                pass
        finally:
            stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    print("READY %d" % port, flush=True)
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
