"""A real SMTP server for vigie-notify's tests and benchmark: aiosmtpd on 127.0.0.1:PORT that
writes every accepted message to stdout as one JSON line (Message-ID, decoded subject, text and
HTML parts, acceptance time). Recipients starting with `reject-` get 550, `tempfail-` get 451.

    python smtp_sink.py PORT [--fast]

--fast (the benchmark) writes the Message-ID and the time only.
"""
import asyncio
import email
import email.policy
import json
import sys
import time

from aiosmtpd.smtp import SMTP


class Sink:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0]
        if local.startswith("reject-"):
            return "550 5.1.1 No such user here"
        if local.startswith("tempfail-"):
            return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    def __init__(self, fast):
        self.fast = fast

    async def handle_DATA(self, server, session, envelope):
        received = time.time()
        if self.fast:
            # The benchmark only needs the Message-ID: no MIME parsing.
            head = envelope.content.split(b"\r\n\r\n", 1)[0]
            mid = None
            for line in head.split(b"\r\n"):
                if line[:11].lower() == b"message-id:":
                    mid = line[11:].strip().decode()
                    break
            sys.stdout.write(json.dumps({"received": received, "message_id": mid}) + "\n")
            sys.stdout.flush()
            return "250 2.0.0 Message accepted"
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        text = html = None
        for part in msg.walk():
            ctype = part.get_content_type()
            if ctype == "text/plain" and text is None:
                text = part.get_content()
            elif ctype == "text/html" and html is None:
                html = part.get_content()
        record = {
            "received": received,
            "message_id": msg.get("Message-ID"),
            "subject": str(msg.get("Subject", "")),
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "text": text,
            "html": html,
            "x_enqueued": msg.get("X-Enqueued-At"),
        }
        sys.stdout.write(json.dumps(record) + "\n")
        sys.stdout.flush()
        return "250 2.0.0 Message accepted"


async def main(port, fast):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(Sink(fast), hostname="sink.test", enable_SMTPUTF8=True, data_size_limit=10_000_000),
        host="127.0.0.1",
        port=port,
        reuse_address=True,
    )
    sys.stdout.write(json.dumps({"ready": port}) + "\n")
    sys.stdout.flush()
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), "--fast" in sys.argv[2:]))
