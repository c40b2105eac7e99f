#!/usr/bin/env python3
"""Normalises the findings of `ndiff --xml` and of `seclab scan diff --output json` to the
same lines, so a benchmark can check that both found exactly the same changes.

    findings.py ndiff NDIFF.xml      findings.py seclab SECLAB.json

One line per finding, sorted, repeated when a finding comes twice (a host listed twice in a
scan is two entries, and each can be new or gone). Hosts new or gone, with each port they
list and its scripts; port changes (state and service on both sides); and, each line marked
with its kind in brackets: the scripts of a changed port that differ ([script]), host state
([state]), addresses ([addresses]), host names ([hostnames]), extra ports ([extraports]), OS
matches ([os]) and host scripts that differ ([hostscript]). Script output is compared as
seclab reports it: each line trimmed, blank lines dropped, the lines joined with " | ".
A new or gone host's OS matches and host scripts are left out: seclab's JSON does not list
them. ndiff's pre- and post-scan script changes come out as [prescript]/[postscript]
lines: seclab does not compare those, so they would show as a difference.
"""
import json
import re
import sys
import xml.etree.ElementTree as ET
from collections import Counter

SERVICE_FIELDS = ("name", "product", "version", "extrainfo")


def script_line(sid, output):
    """seclab's script_line: `id: output`, lines trimmed, blank ones dropped, joined."""
    lines = [line.strip() for line in output.split("\n")]
    return "%s: %s" % (sid, " | ".join(line for line in lines if line))


def script_lines(elems):
    return [script_line(s.get("id"), s.get("output")) for s in elems]


def port_text(port):
    if port is None:
        return "-"
    state = port.find("state")
    if state is None:
        return "-"
    svc = port.find("service")
    fields = [svc.get(k, "") if svc is not None else "" for k in SERVICE_FIELDS]
    return "%s %s" % (state.get("state"), "|".join(fields))


def differing(before, after):
    """Lines for the scripts only in `before` (-) and only in `after` (+), as multisets."""
    b, a = Counter(before), Counter(after)
    return ["-" + s for s in (b - a).elements()] + ["+" + s for s in (a - b).elements()]


def listed(out, addr, side, host):
    out.append("%s %s" % (addr, side))
    for port in host.iter("port"):
        spec = "%s/%s" % (port.get("portid"), port.get("protocol"))
        out.append("%s %s %s %s" % (addr, side, spec, port_text(port)))
        for line in script_lines(port.findall("script")):
            out.append("%s %s %s [script] %s" % (addr, side, spec, line))


def joined(items):
    return "[%s]" % ", ".join(items)


def ndiff(path):
    out = []
    # ndiff writes its XML with minidom, which leaves newlines (and tabs) in attribute values
    # as they are; a parser would fold them into spaces (XML's attribute normalisation), so
    # they are made character references first, and script output keeps its lines.
    text = open(path, encoding="utf-8").read()
    text = re.sub(r'="[^"]*"', lambda m: m.group(0).replace("\r", "&#13;").replace("\n", "&#10;").replace("\t", "&#9;"), text)
    root = ET.fromstring(text)
    for kind in ("prescript", "postscript"):
        for elem in root.iter(kind):
            for script in elem.iter("script"):
                out.append("scan [%s] %s" % (kind, script_line(script.get("id"), script.get("output"))))
    for hostdiff in root.iter("hostdiff"):
        for child in hostdiff:
            if child.tag in ("a", "b"):
                host = child.find("host")
                addr = host.find("address").get("addr")
                listed(out, addr, "gone" if child.tag == "a" else "new", host)
            elif child.tag == "host":
                ndiff_host(out, child)
    return out


def ndiff_host(out, host):
    sides = {"a": {}, "b": {}}  # what only one side has, by element
    common = {"address": [], "hostname": []}
    for elem in host:
        if elem.tag in ("a", "b"):
            for inner in elem:
                sides[elem.tag].setdefault(inner.tag, []).append(inner)
        elif elem.tag == "address":
            common["address"].append(elem)
    addresses = common["address"] + sides["a"].get("address", []) + sides["b"].get("address", [])
    addr = min(addresses, key=lambda e: ({"ipv4": 0, "ipv6": 1}.get(e.get("addrtype"), 2), e.get("addr"))).get("addr")

    if "status" in sides["a"] or "status" in sides["b"]:
        state = lambda side: sides[side]["status"][0].get("state") if "status" in sides[side] else "-"
        out.append("%s [state] %s -> %s" % (addr, state("a"), state("b")))
    if "address" in sides["a"] or "address" in sides["b"]:
        addrs = lambda side: sorted(e.get("addr") for e in common["address"] + sides[side].get("address", []))
        out.append("%s [addresses] %s -> %s" % (addr, joined(addrs("a")), joined(addrs("b"))))
    names = host.find("hostnames")
    if names is not None:
        same = [e.get("name") for e in names.findall("hostname")]
        a = same + [e.get("name") for e in names.findall("a/hostname")]
        b = same + [e.get("name") for e in names.findall("b/hostname")]
        if a != b or names.find("a") is not None or names.find("b") is not None:
            out.append("%s [hostnames] %s -> %s" % (addr, joined(sorted(set(a))), joined(sorted(set(b)))))

    ports = host.find("ports")
    if ports is not None:
        if ports.find("a") is not None or ports.find("b") is not None:
            extra = lambda side: sorted("%s %s" % (e.get("count"), e.get("state")) for e in ports.findall(side + "/extraports"))
            out.append("%s [extraports] %s -> %s" % (addr, joined(extra("a")), joined(extra("b"))))
        for pd in ports.iter("portdiff"):
            same = pd.find("port")
            if same is not None:
                spec = "%s/%s" % (same.get("portid"), same.get("protocol"))
                state = same.find("state").get("state")

                def svc(side):
                    # The same service on both sides is one <service>; else one in <a>, one in <b>.
                    s = same.find("service")
                    if s is None:
                        s = same.find(side + "/service")
                    return "|".join(s.get(k, "") if s is not None else "" for k in SERVICE_FIELDS)
                out.append("%s %s %s %s -> %s %s" % (addr, spec, state, svc("a"), state, svc("b")))
                # Only the scripts that differ are listed, each side in its own <a>/<b>.
                for line in script_lines(same.findall("a/script")):
                    out.append("%s %s [script] -%s" % (addr, spec, line))
                for line in script_lines(same.findall("b/script")):
                    out.append("%s %s [script] +%s" % (addr, spec, line))
            else:
                a, b = pd.find("a/port"), pd.find("b/port")
                any_port = a if a is not None else b
                spec = "%s/%s" % (any_port.get("portid"), any_port.get("protocol"))
                out.append("%s %s %s -> %s" % (addr, spec, port_text(a), port_text(b)))
                scripts = lambda p: script_lines(p.findall("script")) if p is not None else []
                for line in differing(scripts(a), scripts(b)):
                    out.append("%s %s [script] %s" % (addr, spec, line))

    os_elem = host.find("os")
    if os_elem is not None:
        a, b = [], []
        for elem in os_elem:
            if elem.tag == "osmatch":
                a.append(elem.get("name"))
                b.append(elem.get("name"))
            elif elem.tag in ("a", "b"):
                (a if elem.tag == "a" else b).extend(m.get("name") for m in elem.findall("osmatch"))
        out.append("%s [os] %s -> %s" % (addr, joined(a), joined(b)))

    # Host scripts: <hostscript> holding <a>/<b> per differing script, or, when one side
    # has none at all, <a><hostscript> (or <b>) holding every script of the other.
    minus = host.findall("hostscript/a/script") + [s for hs in sides["a"].get("hostscript", []) for s in hs.findall("script")]
    plus = host.findall("hostscript/b/script") + [s for hs in sides["b"].get("hostscript", []) for s in hs.findall("script")]
    for line in script_lines(minus):
        out.append("%s [hostscript] -%s" % (addr, line))
    for line in script_lines(plus):
        out.append("%s [hostscript] +%s" % (addr, line))


def seclab(path):
    out = []

    def text(side):
        if side is None:
            return "-"
        svc = side.get("service") or {}
        return "%s %s" % (side["state"], "|".join(svc.get(k) or "" for k in SERVICE_FIELDS))

    for host in json.load(open(path))["hosts"]:
        addr = host["address"]
        for c in host["changes"]:
            kind = c["change"]
            if kind in ("host-new", "host-gone"):
                side = kind[5:]
                out.append("%s %s" % (addr, side))
                for p in c["ports"]:
                    spec = "%d/%s" % (p["port"], p["protocol"])
                    out.append("%s %s %s %s" % (addr, side, spec, text(p)))
                    for line in p.get("scripts", []):
                        out.append("%s %s %s [script] %s" % (addr, side, spec, line))
            elif kind == "port":
                spec = "%d/%s" % (c["port"], c["protocol"])
                before, after = c.get("before"), c.get("after")
                out.append("%s %s %s -> %s" % (addr, spec, text(before), text(after)))
                scripts = lambda side: side.get("scripts", []) if side else []
                for line in differing(scripts(before), scripts(after)):
                    out.append("%s %s [script] %s" % (addr, spec, line))
            elif kind == "host-state":
                out.append("%s [state] %s -> %s" % (addr, c["before"], c["after"]))
            elif kind in ("addresses", "hostnames", "extra-ports", "os"):
                label = {"extra-ports": "extraports"}.get(kind, kind)
                out.append("%s [%s] %s -> %s" % (addr, label, joined(c["before"]), joined(c["after"])))
            elif kind == "host-scripts":
                for line in differing(c["before"], c["after"]):
                    out.append("%s [hostscript] %s" % (addr, line))
            else:
                out.append("%s [unknown change %s]" % (addr, kind))
    return out


if __name__ == "__main__":
    for line in sorted({"ndiff": ndiff, "seclab": seclab}[sys.argv[1]](sys.argv[2])):
        print(line)
