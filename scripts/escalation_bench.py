"""The measuring half of scripts/bench-escalation (which starts the hub and aiosmtpd).

Plans one person on duty for `network` through the console (as the administrator would), pushes
N critical alerts in one burst (batches sent at the same instant through POST /api/v1/alerts),
then matches each mail aiosmtpd accepted to its alert: the Message-ID names the outbox row
(<outbox-ID.…@host>), whose de-duplication key names the alert (esc:ALERT:round:step:user:mail).
Prints p50/p95/p99/max from the push's answer (the alert ingested) to the SMTP acceptance, and
the split at the outbox row's creation (routing, then delivery).
"""
import argparse
import datetime
import http.client
import json
import re
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse


class Hub:
    def __init__(self, address):
        self.host, port = address.rsplit(":", 1)
        self.port = int(port)
        self.cookies = {}
        self.csrf = ""

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
        headers = dict(headers or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read().decode("utf-8", "replace")
        for k, v in resp.getheaders():
            if k.lower() == "set-cookie":
                name, _, value = v.split(";", 1)[0].partition("=")
                self.cookies[name] = value
        m = re.search(r'name="_csrf" value="([^"]+)"', data)
        if m:
            self.csrf = m.group(1)
        conn.close()
        return resp.status, data

    def form(self, path, fields):
        body = urllib.parse.urlencode([("_csrf", self.csrf)] + fields)
        return self.request(
            "POST", path, body, {"Content-Type": "application/x-www-form-urlencoded"}
        )


def plan_on_duty(hub, admin, password, login):
    status, _ = hub.request("GET", "/login")
    assert status == 200, status
    status, body = hub.form("/login", [("login", admin), ("password", password), ("next", "/")])
    assert status == 303, (status, body[:500])
    status, _ = hub.request("GET", "/admin/oncall?domain=network")
    assert status == 200, status
    now = datetime.datetime.now(datetime.timezone.utc)
    fmt = lambda d: d.strftime("%Y-%m-%dT%H:%M")
    status, body = hub.form(
        "/admin/oncall/periods",
        [
            ("domain", "network"),
            ("p_user", login),
            ("p_starts_at", fmt(now - datetime.timedelta(days=1))),
            ("p_ends_at", fmt(now + datetime.timedelta(days=1))),
            ("p_index", "1"),
        ],
    )
    assert status == 303, (status, body[:2000])


def push(hub, token, alerts):
    return hub.request(
        "POST",
        "/api/v1/alerts",
        json.dumps(alerts),
        {"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )


def smtp_lines(path):
    out = []
    with open(path) as f:
        for line in f:
            try:
                v = json.loads(line)
            except ValueError:
                continue
            if "message_id" in v:
                out.append(v)
    return out


def outbox_rows(db_url):
    """(outbox id → (dedupe_key, created_at epoch)) of the routed messages."""
    sql = "SELECT id, dedupe_key, created_at FROM outbox WHERE kind = 'alert.routed'"
    rows = {}
    if db_url.startswith("sqlite://"):
        conn = sqlite3.connect(db_url[len("sqlite://"):].split("?", 1)[0])
        for oid, key, created in conn.execute(sql):
            rows[oid] = (key, parse_time(created))
        conn.close()
    else:
        q = ("SELECT id, dedupe_key, extract(epoch FROM created_at) FROM outbox "
             "WHERE kind = 'alert.routed'")
        out = subprocess.run(["psql", "-qAtX", "-F", "\t", db_url, "-c", q],
                             check=True, capture_output=True, text=True).stdout
        for line in out.splitlines():
            oid, key, created = line.split("\t")
            rows[int(oid)] = (key, float(created))
    return rows


def parse_time(text):
    if isinstance(text, (int, float)):
        return float(text)
    t = text.replace(" ", "T", 1)
    if t.endswith("Z"):
        t = t[:-1] + "+00:00"
    return datetime.datetime.fromisoformat(t).timestamp()


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(p / 100 * len(s) + 0.5)) - 1))]


def show(label, values):
    ms = [v * 1000 for v in values]
    print(f"  {label:<36} p50 {pct(ms, 50):7.0f} ms  p95 {pct(ms, 95):7.0f} ms  "
          f"p99 {pct(ms, 99):7.0f} ms  max {max(ms):7.0f} ms")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hub", required=True)
    ap.add_argument("--admin", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--duty", required=True)
    ap.add_argument("--smtp-log", required=True)
    ap.add_argument("--db-url", required=True)
    ap.add_argument("--label", default="")
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=100)
    a = ap.parse_args()

    hub = Hub(a.hub)
    plan_on_duty(hub, a.admin, a.password, a.duty)
    api = Hub(a.hub)
    status, body = api.request("GET", "/api/v1/oncall/now?domain=network", None,
                               {"Authorization": f"Bearer {a.token}"})
    assert status == 200 and a.duty in body, (status, body)

    # One alert first: a hub that has already sent a mail (connection to the relay open).
    status, body = push(api, a.token, [{"source": "bench", "resource": "warm-up", "message": "m",
                                        "severity": 2, "domain": "network"}])
    assert status == 202, (status, body)
    deadline = time.time() + 30
    while len(smtp_lines(a.smtp_log)) < 1:
        assert time.time() < deadline, "the warm-up mail never arrived"
        time.sleep(0.05)

    # The burst: N alerts, N/batch requests released at the same instant.
    batches = [[{"source": "bench", "resource": f"esc-{b}-{i}",
                 "message": "Interface down", "severity": 2, "domain": "network"}
                for i in range(a.batch)] for b in range(a.n // a.batch)]
    results = [None] * len(batches)
    gate = threading.Barrier(len(batches))

    def send(k):
        client = Hub(a.hub)
        gate.wait()
        sent = time.time()
        status, body = push(client, a.token, batches[k])
        answered = time.time()
        assert status == 202, (status, body[:500])
        results[k] = (sent, answered, json.loads(body)["ids"])

    threads = [threading.Thread(target=send, args=(k,)) for k in range(len(batches))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sent_at, answered_at = {}, {}
    for sent, answered, ids in results:
        for i in ids:
            sent_at[i] = sent
            answered_at[i] = answered
    total = len(sent_at)
    assert total == a.n, f"{total} alerts created of {a.n}"

    deadline = time.time() + 120
    while len(smtp_lines(a.smtp_log)) < total + 1:
        if time.time() > deadline:
            print(f"only {len(smtp_lines(a.smtp_log)) - 1} mails of {total} within 120 s",
                  file=sys.stderr)
            break
        time.sleep(0.1)
    time.sleep(0.5)

    rows = outbox_rows(a.db_url)
    from_answer, from_sent, routing, delivery = [], [], [], []
    seen = set()
    for line in smtp_lines(a.smtp_log):
        m = re.match(r"<outbox-(\d+)\.", line["message_id"] or "")
        if not m or int(m.group(1)) not in rows:
            continue
        key, created = rows[int(m.group(1))]
        alert = int(key.split(":")[1])
        if alert not in answered_at:
            continue  # the warm-up
        assert alert not in seen, f"two mails for alert {alert}"
        seen.add(alert)
        received = line["received"]
        from_answer.append(received - answered_at[alert])
        from_sent.append(received - sent_at[alert])
        routing.append(created - answered_at[alert])
        delivery.append(received - created)
    print(f"{a.label}: {len(seen)} mails of {total} critical alerts "
          f"({len(batches)} requests of {a.batch} at once; answers within "
          f"{max(r[1] for r in results) - min(r[0] for r in results):.2f} s)")
    if not seen:
        sys.exit(1)
    show("push answered → SMTP accepted", from_answer)
    show("push sent → SMTP accepted", from_sent)
    show("  of which push answered → outbox row", routing)
    show("  of which outbox row → SMTP accepted", delivery)
    if len(seen) < total:
        sys.exit(1)


if __name__ == "__main__":
    main()
