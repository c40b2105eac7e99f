#!/usr/bin/env python3
"""Drives a running `seclab watch` for bench/watch.sh and prints the results table.

Every request goes to the loopback test control plane or to watch's loopback endpoints.
"""

import argparse
import base64
import datetime
import http.client
import json
import os
import re
import ssl
import statistics
import tempfile
import time
import urllib.request

import yaml

TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ["lab", "log", "endpoints", "kubeconfig", "audit", "namespace"]:
        p.add_argument(f"--{name}", required=True)
    for name in ["pid", "saves", "repairs", "resyncs"]:
        p.add_argument(f"--{name}", type=int, required=True)
    p.add_argument("--apply", type=float, required=True)
    p.add_argument("--reapply", type=float, required=True)
    p.add_argument("--reapply-writes", type=int, required=True)
    p.add_argument("--objects", type=int, required=True)
    p.add_argument("--json", help="also write the figures to this file (bench/curve.sh reads them)")
    return p.parse_args()


class Api:
    """The API server of the admin kubeconfig (a loopback address)."""

    def __init__(self, kubeconfig):
        config = yaml.safe_load(open(kubeconfig))
        cluster = config["clusters"][0]["cluster"]
        self.token = config["users"][0]["user"]["token"]
        host, port = cluster["server"].removeprefix("https://").split(":")
        assert host == "127.0.0.1", "the benchmark only talks to loopback"
        self.address = (host, int(port))
        ca = cluster.get("certificate-authority-data")
        self.context = ssl.create_default_context()
        if ca:
            with tempfile.NamedTemporaryFile("wb", delete=False) as f:
                f.write(base64.b64decode(ca))
            self.context.load_verify_locations(f.name)
        else:
            self.context.load_verify_locations(cluster["certificate-authority"])

    def request(self, method, path):
        conn = http.client.HTTPSConnection(*self.address, context=self.context)
        conn.request(method, path, headers={"Authorization": f"Bearer {self.token}"})
        response = conn.getresponse()
        body = response.read()
        conn.close()
        return response.status, body


def log_lines(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read().splitlines()


def wait_for_line(path, needle, start_line, timeout=60.0):
    """The first log line after start_line containing needle, and its timestamp."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        lines = log_lines(path)
        for line in lines[start_line:]:
            if needle in line:
                stamp = TIMESTAMP.match(line)
                return datetime.datetime.fromisoformat(stamp.group(1) + "+00:00").timestamp()
        time.sleep(0.005)
    raise SystemExit(f"watch never logged {needle!r}; see {path}")


def metrics(endpoints):
    text = urllib.request.urlopen(f"{endpoints}/metrics").read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def seclab_requests(audit, start, namespace):
    """LISTs and writes seclab sent after byte `start` of the audit log, leases excluded."""
    lists = writes = 0
    with open(audit, "rb") as f:
        f.seek(start)
        for line in f:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if not e.get("userAgent", "").startswith("seclab/"):
                continue
            if e.get("objectRef", {}).get("resource") == "leases":
                continue
            if e["verb"] == "list":
                lists += 1
            elif e["verb"] in ("create", "update", "patch", "delete") and "dryRun" not in e["requestURI"]:
                writes += 1
    return lists, writes


def main():
    a = parse_args()
    deadline = time.time() + 600
    while True:
        try:
            if urllib.request.urlopen(f"{a.endpoints}/readyz").status == 200:
                break
        except Exception:
            pass
        if time.time() > deadline:
            raise SystemExit("watch never became ready")
        time.sleep(0.2)
    time.sleep(5)  # the watchers list once after the first pass

    spec = yaml.safe_load(open(a.lab))
    tenant = spec["tenants"][0]
    deployment = f"Deployment.apps {a.namespace}/netdelta-{tenant['name']}"
    saves = []
    for i in range(a.saves):
        tenant["image"] = f"registry.bench.example/netdelta/app:1.{i + 1}"
        start_line = len(log_lines(a.log))
        # As editors save: the whole file written beside it, then renamed into place.
        with open(a.lab + ".tmp", "w") as f:
            yaml.safe_dump(spec, f, sort_keys=False)
        saved = time.time()
        os.replace(a.lab + ".tmp", a.lab)
        applied = wait_for_line(a.log, f"updated {deployment}", start_line)
        saves.append(applied - saved)
        time.sleep(0.5)

    api = Api(a.kubeconfig)
    repairs = []
    victim = f"/apis/apps/v1/namespaces/{a.namespace}/deployments/netdelta-{spec['tenants'][1]['name']}"
    for _ in range(a.repairs):
        start_line = len(log_lines(a.log))
        deleted = time.time()
        status, body = api.request("DELETE", victim)
        assert status == 200, body
        created = wait_for_line(a.log, f"created Deployment.apps {a.namespace}/netdelta-{spec['tenants'][1]['name']}",
                                start_line)
        repairs.append(created - deleted)
        time.sleep(1.0)

    def passes():
        m = metrics(a.endpoints)
        return (m.get('seclab_reconcile_total{result="success"}', 0), m.get("seclab_reconcile_duration_seconds_sum", 0),
                m.get("seclab_reconcile_duration_seconds_count", 0))

    time.sleep(3)
    with open(a.audit, "rb") as f:
        audit_start = f.seek(0, 2)
    first, sum0, count0 = passes()
    rss = {}
    while True:
        done = passes()[0] - first
        if done >= 10 and 10 not in rss:
            rss[10] = rss_mib(a.pid)
        if done >= a.resyncs:
            rss[a.resyncs] = rss_mib(a.pid)
            break
        time.sleep(0.2)
    _, sum1, count1 = passes()
    lists, writes = seclab_requests(a.audit, audit_start, a.namespace)
    resync = (sum1 - sum0) / max(count1 - count0, 1)

    ms = lambda s: f"{s * 1000:.0f} ms"
    print(f"{'measure':<44} {'result':>14}  target")
    print(f"{'one-shot apply of the lab':<44} {a.apply:>12.2f} s")
    print(f"{'one-shot unchanged re-apply (median of 5)':<44} {a.reapply:>12.2f} s  < 0.4 s")
    print(f"{'save-to-applied, median of ' + str(len(saves)):<44} {ms(statistics.median(saves)):>14}  < 300 ms")
    print(f"{'save-to-applied, worst':<44} {ms(max(saves)):>14}  < 1 s")
    print(f"{'drift repair, median of ' + str(len(repairs)):<44} {ms(statistics.median(repairs)):>14}  < 500 ms")
    print(f"{'drift repair, worst':<44} {ms(max(repairs)):>14}")
    print(f"{'unchanged resync from the caches, mean':<44} {ms(resync):>14}  < 300 ms")
    print(f"{'LISTs / writes during ' + str(a.resyncs) + ' resyncs':<44} {f'{lists} / {writes}':>14}  0 / 0")
    growth = 100 * (rss[a.resyncs] - rss[10]) / rss[10]
    print(f"{'RSS at resync 10 / ' + str(a.resyncs):<44} {f'{rss[10]:.0f} / {rss[a.resyncs]:.0f} MiB':>14}  < 200 MiB, growth < 5% ({growth:+.1f}%)")
    print(f"{'re-apply: one-shot / watch resync':<44} {a.reapply / resync:>13.1f}x")
    print(f"{'writes of the 5 unchanged re-applies':<44} {a.reapply_writes:>14}  0")
    if a.json:
        figures = {
            "objects": a.objects, "apply_s": a.apply, "reapply_s": a.reapply, "reapply_writes": a.reapply_writes,
            "save_median_s": statistics.median(saves), "save_worst_s": max(saves),
            "repair_median_s": statistics.median(repairs), "resync_mean_s": resync,
            "resync_lists": lists, "resync_writes": writes,
            "rss_first_mib": rss[10], "rss_last_mib": rss[a.resyncs], "resyncs": a.resyncs,
        }
        with open(a.json, "w") as f:
            json.dump(figures, f)


if __name__ == "__main__":
    main()
