"""A real SMTP server for digestif's end-to-end tests, built on aiosmtpd.

It prints "READY <port>" once listening on 127.0.0.1, saves every accepted message as
<out>/<n>.eml and appends one JSON line per message to <out>/log.jsonl. Flags make it
misbehave the way real relays do: STARTTLS and AUTH required, recipients refused (550) or
deferred (450) a few times, connections dropped with 421 after N messages, a slow reply to
the end of data, every message refused after the end of data (554).
"""

import argparse
import asyncio
import json
import os
import socket
import ssl
import sys
import threading
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Handler:
    def __init__(self, args):
        self.args = args
        self.out = args.out
        self.count = 0
        self.lock = threading.Lock()
        self.reject = {a.lower() for a in args.reject}
        self.tempfail = {}
        for spec in args.tempfail:
            addr, n = spec.rsplit(":", 1)
            self.tempfail[addr.lower()] = int(n)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.args.no_pipelining:
            return responses
        # aiosmtpd reads commands one by one, so pipelined clients just work: announce it.
        return responses[:-1] + ["250-PIPELINING"] + responses[-1:]

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        done = getattr(session, "digestif_messages", 0)
        if self.args.hangup_after and done >= self.args.hangup_after:
            asyncio.get_event_loop().call_soon(server.transport.close)
            return "421 4.3.2 too many messages on this connection, closing"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        session.mail_time = time.monotonic()
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        key = address.lower()
        if self.args.refuse_rcpt:
            return self.args.refuse_rcpt
        if key in self.reject:
            return "550 5.1.1 no such user here"
        if self.tempfail.get(key, 0) > 0:
            self.tempfail[key] -= 1
            return "450 4.2.1 mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.args.delay_ms:
            await asyncio.sleep(self.args.delay_ms / 1000)
        if self.args.reject_data:
            return "554 5.7.1 message refused by policy"
        session.digestif_messages = getattr(session, "digestif_messages", 0) + 1
        with self.lock:
            self.count += 1
            n = self.count
            with open(os.path.join(self.out, f"{n}.eml"), "wb") as f:
                f.write(envelope.original_content)
            entry = {
                "n": n,
                "mail_from": envelope.mail_from,
                "rcpt": envelope.rcpt_tos,
                "tls": session.ssl is not None,
                "auth": session.authenticated and self.args.auth.split(":")[0] if self.args.auth else None,
                "mail_options": envelope.mail_options,
                "mail_time": session.mail_time,
                "peer_port": session.peer[1],
            }
            with open(os.path.join(self.out, "log.jsonl"), "a") as f:
                f.write(json.dumps(entry) + "\n")
        if self.args.silent_after_data_ms:
            # The message is taken; the reply comes too late for any client timeout.
            await asyncio.sleep(self.args.silent_after_data_ms / 1000)
        return f"250 2.0.0 queued as msg{n}"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--auth", help="USER:PASSWORD required before MAIL")
    p.add_argument("--reject", action="append", default=[], help="answer 550 to this RCPT")
    p.add_argument("--tempfail", action="append", default=[], help="ADDR:N answer 450 N times")
    p.add_argument("--hangup-after", type=int, default=0, help="421 and close after N messages per connection")
    p.add_argument("--delay-ms", type=int, default=0, help="wait before answering the end of data")
    p.add_argument("--silent-after-data-ms", type=int, default=0,
                   help="store each message, then wait this long before answering")
    p.add_argument("--no-smtputf8", action="store_true", help="do not offer SMTPUTF8 (RFC 6531)")
    p.add_argument("--refuse-rcpt", help="answer this reply to every RCPT (a relay's policy)")
    p.add_argument("--reject-data", action="store_true", help="answer 554 after every end of data")
    p.add_argument("--no-pipelining", action="store_true", help="do not announce PIPELINING")
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)

    kwargs = {"decode_data": False, "enable_SMTPUTF8": not args.no_smtputf8}
    if args.tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        kwargs.update(tls_context=context, require_starttls=True)
    if args.auth:
        user, password = args.auth.split(":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (
                isinstance(auth_data, LoginPassword)
                and auth_data.login.decode() == user
                and auth_data.password.decode() == password
            )
            return AuthResult(success=ok, handled=False)

        kwargs.update(authenticator=authenticator, auth_required=True,
                      auth_require_tls=bool(args.tls_cert))

    port = free_port()
    controller = Controller(Handler(args), hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    print(f"READY {port}", flush=True)
    try:
        # Stop when the test that started us goes away (stdin closes).
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
