#!/usr/bin/env python3
"""Normalises the findings of `ndiff --xml` and of `seclab scan diff --output json` to the
same lines, so a benchmark can check that both found exactly the same changes.

    findings.py ndiff NDIFF.xml      findings.py seclab SECLAB.json
"""
import json
import sys
import xml.etree.ElementTree as ET


def port_text(port):
    if port is None:
        return "-"
    state = port.find("state")
    if state is None:
        return "-"
    svc = port.find("service")
    fields = [svc.get(k, "") if svc is not None else "" for k in ("name", "product", "version", "extrainfo")]
    return "%s %s" % (state.get("state"), "|".join(fields))


def ndiff(path):
    out = set()
    for hostdiff in ET.parse(path).getroot().iter("hostdiff"):
        for child in hostdiff:
            if child.tag in ("a", "b"):
                addr, side = child.find("host/address").get("addr"), "gone" if child.tag == "a" else "new"
                out.add("%s %s" % (addr, side))
                for port in child.iter("port"):
                    out.add("%s %s %s/%s %s" % (addr, side, port.get("portid"), port.get("protocol"), port_text(port)))
            elif child.tag == "host":
                addr = child.find("address").get("addr")
                for pd in child.iter("portdiff"):
                    same = pd.find("port")
                    if same is not None:
                        spec = "%s/%s" % (same.get("portid"), same.get("protocol"))
                        state = same.find("state").get("state")
                        def svc(side):
                            s = same.find(side + "/service")
                            return "|".join(s.get(k, "") if s is not None else "" for k in ("name", "product", "version", "extrainfo"))
                        out.add("%s %s %s %s -> %s %s" % (addr, spec, state, svc("a"), state, svc("b")))
                    else:
                        a, b = pd.find("a/port"), pd.find("b/port")
                        any_port = a if a is not None else b
                        spec = "%s/%s" % (any_port.get("portid"), any_port.get("protocol"))
                        out.add("%s %s %s -> %s" % (addr, spec, port_text(a), port_text(b)))
    return out


def seclab(path):
    out = set()
    for host in json.load(open(path))["hosts"]:
        addr = host["address"]
        for c in host["changes"]:
            kind = c["change"]
            def text(side):
                if side is None:
                    return "-"
                svc = side.get("service") or {}
                return "%s %s" % (side["state"], "|".join(svc.get(k) or "" for k in ("name", "product", "version", "extrainfo")))
            if kind in ("host-new", "host-gone"):
                out.add("%s %s" % (addr, kind[5:]))
                for p in c["ports"]:
                    out.add("%s %s %d/%s %s" % (addr, kind[5:], p["port"], p["protocol"], text(p)))
            elif kind == "port":
                out.add("%s %d/%s %s -> %s" % (addr, c["port"], c["protocol"], text(c.get("before")), text(c.get("after"))))
    return out


if __name__ == "__main__":
    for line in sorted({"ndiff": ndiff, "seclab": seclab}[sys.argv[1]](sys.argv[2])):
        print(line)
