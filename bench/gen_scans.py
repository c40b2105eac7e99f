#!/usr/bin/env python3
"""Writes a realistic pair of nmap XML scans for benchmarks.

    gen_scans.py HOSTS BEFORE.xml AFTER.xml [--seed N]

Hosts are 127.64.0.0 onwards (data only: nothing is scanned). Each host has a few open
ports with -sV style services, the rest summarised as extraports, like nmap writes them.
About 2% of hosts differ in AFTER: ports opened or closed, versions changed, hosts gone
or new.
"""
import random
import sys

SERVICES = [
    (22, "ssh", "OpenSSH", "9.2p1 Debian 2", "protocol 2.0"),
    (25, "smtp", "Postfix smtpd", None, None),
    (53, "domain", "ISC BIND", "9.18.19", None),
    (80, "http", "Apache httpd", "2.4.57", "(Debian)"),
    (443, "https", "nginx", "1.22.1", None),
    (3306, "mysql", "MySQL", "8.0.35", None),
    (8080, "http-proxy", "Squid http proxy", "5.7", None),
]


def address(i):
    return "127.%d.%d.%d" % (64 + (i >> 16), (i >> 8) & 255, i & 255)


def service_xml(port, name, product, version, extra):
    attrs = ['name="%s"' % name]
    if product:
        attrs.append('product="%s"' % product)
    if version:
        attrs.append('version="%s"' % version)
    if extra:
        attrs.append('extrainfo="%s"' % extra)
    attrs.append('method="probed" conf="10"')
    return ('<port protocol="tcp" portid="%d"><state state="open" reason="syn-ack" reason_ttl="64"/>'
            "<service %s/></port>\n" % (port, " ".join(attrs)))


def host_xml(i, ports, start):
    out = ['<host starttime="%d" endtime="%d"><status state="up" reason="syn-ack" reason_ttl="64"/>\n' % (start, start + 5)]
    out.append('<address addr="%s" addrtype="ipv4"/>\n' % address(i))
    out.append('<hostnames>\n<hostname name="h%d.bench.test" type="PTR"/>\n</hostnames>\n' % i)
    out.append('<ports><extraports state="closed" count="%d"><extrareasons reason="reset" count="%d"/></extraports>\n'
               % (1000 - len(ports), 1000 - len(ports)))
    for p in sorted(ports):
        out.append(service_xml(*p))
    out.append('</ports>\n<times srtt="350" rttvar="120" to="100000"/>\n</host>\n')
    return "".join(out)


def write(path, hosts, start):
    with open(path, "w") as f:
        f.write('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE nmaprun>\n')
        f.write('<nmaprun scanner="nmap" args="nmap -sV -oX bench.xml 127.64.0.0/14" start="%d" '
                'startstr="Mon Nov 23 02:00:00 2026" version="7.93" xmloutputversion="1.05">\n' % start)
        f.write('<scaninfo type="syn" protocol="tcp" numservices="1000" services="1-1000"/>\n'
                '<verbose level="0"/>\n<debugging level="0"/>\n')
        for i in sorted(hosts):
            f.write(host_xml(i, hosts[i], start))
        f.write('<runstats><finished time="%d" timestr="Mon Nov 23 03:00:00 2026" summary="Nmap done" '
                'elapsed="3600" exit="success"/><hosts up="%d" down="0" total="%d"/>\n</runstats>\n</nmaprun>\n'
                % (start + 3600, len(hosts), len(hosts)))


def main():
    count, before, after = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    rng = random.Random(int(sys.argv[5]) if len(sys.argv) > 5 else 7)
    hosts = {}
    for i in range(count):
        hosts[i] = [SERVICES[j] for j in sorted(rng.sample(range(len(SERVICES)), rng.randint(1, 3)))]
    write(before, hosts, 1795400000)
    changed = dict((i, list(p)) for i, p in hosts.items())
    for i in rng.sample(range(count), count // 50):
        roll = rng.random()
        if roll < 0.3:
            extra = [s for s in SERVICES if s not in changed[i]]
            if extra:
                changed[i].append(rng.choice(extra))
        elif roll < 0.55 and len(changed[i]) > 1:
            changed[i].pop(rng.randrange(len(changed[i])))
        elif roll < 0.8:
            k = rng.randrange(len(changed[i]))
            port, name, product, version, extra = changed[i][k]
            changed[i][k] = (port, name, product, (version or "1.0") + "-1", extra)
        elif roll < 0.9:
            del changed[i]
        else:
            changed[count + i] = [SERVICES[0]]
    write(after, changed, 1795486400)


if __name__ == "__main__":
    main()
