#!/usr/bin/env python3
"""Writes a pair of nmap XML scans of the "rich" shape for benchmarks: what
`nmap -sS -sU -sV -O --traceroute --script=...` writes for servers with many services.

    gen_scans_rich.py HOSTS BEFORE.xml AFTER.xml [--seed N] [--frozen]

Hosts are 127.64.0.0 onwards (data only: nothing is scanned, and no other address appears).
Every host has 10-40 open ports (fewer on printers and routers, whose services are fewer)
with -sV service fields (product, version, extrainfo, ostype, devicetype, cpe children,
sometimes a servicefp), at most one NSE script per port and per host (multi-line output
with the `&#xa;` and entity escapes nmap writes, `<elem>`/`<table>` children), OS detection
(`<portused>`, `<osmatch>` with `<osclass>` and `<cpe>`, an `<osfingerprint>` when no match
is exact), `<uptime>`, `<distance>`, `<tcpsequence>`, `<ipidsequence>`, `<tcptssequence>`,
`<trace>`, extra ports with the reasons' port lists (nmap 7.92 and later), and UDP ports.
Element order, line breaks and escaping follow nmap's output.cc, xml.cc and nse_main.

Between BEFORE and AFTER about 3% of the hosts change in what ndiff compares (ports opened,
closed or filtered, service versions, port and host script output, OS matches, host names,
a host timing out, hosts gone and new), about 2% only in what it does not compare
(accuracy, osclass, cpe, ostype, a reboot, the route). About 0.8% of the hosts are listed
twice (a target given twice: the second entry comes in a later batch, at the end of the
file, and sometimes sees a port more or less, or no host script); some are listed twice in
only one of the two files, and for some the first entry in AFTER sees what the second saw
in BEFORE while the second sees something new (a flapping service), so that pairing the
entries in file order, as ndiff does, matters.

What changes on every real scan changes here too, on every host: start and end times,
`<times>`, the uptime in seconds, the TCP sequence, IP ID and timestamp values, the random
closed UDP port OS detection used, traceroute round-trip times, and the date and time inside
OS and service fingerprints. `--frozen` keeps those equal in both files and in both
entries of a host listed twice (only the start tags and `<times>` differ), as in a scan
without -O and --traceroute: to see what byte-identical unchanged hosts are worth.

One script per port and per host at most: ndiff (7.93, and nmap's master as of 2026) fails
with "TypeError: '<' not supported between instances of 'ScriptResult'" on a port or a host
with two script results (nmap/nmap#2930), so a shape with more could not be compared.
No pre- or post-scan scripts.
"""
import argparse
import base64
import random
import re
import sys
import time

M64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


def mix(x):
    """splitmix64's finaliser: the volatile values of one host entry, from its seed."""
    x = (x + GOLDEN) & M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


class Volatile:
    """Values that differ from one scan to the next (unless --frozen): a tiny deterministic
    generator, independent of the main one so that both files stay reproducible."""
    __slots__ = ("seed", "n")

    def __init__(self, *parts):
        seed = 0
        for part in parts:
            seed = mix(seed ^ (part & M64))
        self.seed, self.n = seed, 0

    def next(self):
        self.n += 1
        return mix(self.seed + self.n * GOLDEN)

    def int(self, low, high):
        return low + self.next() % (high - low + 1)


def address(i):
    assert 0 <= i < (1 << 22), "outside 127.64.0.0/10"
    return "127.%d.%d.%d" % (64 + (i >> 16), (i >> 8) & 255, i & 255)


def hostname(i):
    return "h%d.bench.test" % i


def ctime(t):
    """nmap's lastboot/startstr format (ctime), in UTC so the output never depends on TZ."""
    g = time.gmtime(t)
    return "%s %s %2d %02d:%02d:%02d %d" % (
        ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[g.tm_wday],
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")[g.tm_mon - 1],
        g.tm_mday, g.tm_hour, g.tm_min, g.tm_sec, g.tm_year)


_NEEDS_ESCAPE = re.compile(r"""[<>&"'\x00-\x1f\x80-\U0010ffff]|--""")


def esc(s):
    """xml.cc's escape(): <>&"' as entities, '-' after '-' as &#45;, control characters
    and every byte of a non-ASCII character as &#xNN; (nmap writes UTF-8 byte by byte)."""
    if not _NEEDS_ESCAPE.search(s):
        return s
    out, prev = [], ""
    for ch in s.encode("utf-8").decode("latin-1"):
        o = ord(ch)
        if ch == "<":
            r = "&lt;"
        elif ch == ">":
            r = "&gt;"
        elif ch == "&":
            r = "&amp;"
        elif ch == '"':
            r = "&quot;"
        elif ch == "'":
            r = "&apos;"
        elif ch == "-" and prev == "-":
            r = "&#45;"
        elif o < 0x20 or o > 0x7F:
            r = "&#x%x;" % o
        else:
            r = ch
        out.append(r)
        prev = ch
    return "".join(out)


def ranges(ports):
    """output_rangelist_given_ports: 1,3-4,6-7."""
    out, i = [], 0
    while i < len(ports):
        j = i
        while j + 1 < len(ports) and ports[j + 1] == ports[j] + 1:
            j += 1
        out.append(str(ports[i]) if i == j else "%d-%d" % (ports[i], ports[j]))
        i = j + 1
    return ",".join(out)


# ---------------------------------------------------------------------------------------
# Services: families of -sV results, each a list of versions (a "version change" moves a
# port to the next one). A service is a tuple:
# (name, product, version, extrainfo, ostype, devicetype, tunnel, method, conf, cpes, fp)
# where fp names the probe responses of a servicefp (rendered per scan: it holds a date).

def svc(name, product=None, version=None, extrainfo=None, ostype=None, devicetype=None, tunnel=None,
        cpes=(), method="probed", conf=10, fp=None):
    return (name, product, version, extrainfo, ostype, devicetype, tunnel, method, conf, tuple(cpes), fp)


def versions(name, product, vers, cpe=None, **kw):
    """A family: the same service at successive versions (cpe: a format with %s)."""
    extra = list(kw.pop("cpes", ()))
    def cpe_of(v):
        return [cpe % v.split(" ")[0] if "%s" in cpe else cpe] if cpe else []
    return [svc(name, product, v, cpes=cpe_of(v) + extra, **kw) for v in vers]


LINUX_CPE = "cpe:/o:linux:linux_kernel"
WIN_CPE = "cpe:/o:microsoft:windows"
FAMILIES = {
    "openssh-deb": versions("ssh", "OpenSSH", ["8.4p1 Debian 5+deb11u3", "9.2p1 Debian 2+deb12u3", "9.2p1 Debian 2+deb12u4"],
                            "cpe:/a:openbsd:openssh:%s", extrainfo="protocol 2.0", ostype="Linux", cpes=[LINUX_CPE]),
    "openssh-ubuntu": versions("ssh", "OpenSSH", ["8.9p1 Ubuntu 3ubuntu0.6", "8.9p1 Ubuntu 3ubuntu0.10", "9.6p1 Ubuntu 3ubuntu13.5"],
                               "cpe:/a:openbsd:openssh:%s", extrainfo="Ubuntu Linux; protocol 2.0", ostype="Linux",
                               cpes=[LINUX_CPE]),
    "openssh-bsd": versions("ssh", "OpenSSH", ["8.8 (FreeBSD 20211221)", "9.3 (FreeBSD 20230316)"],
                            "cpe:/a:openbsd:openssh:%s", extrainfo="protocol 2.0", ostype="FreeBSD",
                            cpes=["cpe:/o:freebsd:freebsd"]),
    "cisco-ssh": versions("ssh", "Cisco SSH", ["1.25"], "cpe:/a:cisco:ssh:%s", extrainfo="protocol 2.0", ostype="IOS",
                          cpes=["cpe:/o:cisco:ios"]),
    "vsftpd": versions("ftp", "vsftpd", ["3.0.3", "3.0.5"], "cpe:/a:vsftpd:vsftpd:%s", ostype="Unix"),
    "postfix": [svc("smtp", "Postfix smtpd", cpes=["cpe:/a:postfix:postfix"])],
    "postfix-ssl": [svc("smtp", "Postfix smtpd", tunnel="ssl", cpes=["cpe:/a:postfix:postfix"])],
    "exim": versions("smtp", "Exim smtpd", ["4.96", "4.97"], "cpe:/a:exim:exim:%s"),
    "bind": versions("domain", "ISC BIND", ["9.18.19-1~deb12u1", "9.18.24-1", "9.18.28-1~deb12u2"], "cpe:/a:isc:bind:%s",
                     extrainfo="Debian Linux", ostype="Linux", cpes=[LINUX_CPE]),
    "simple-dns": [svc("domain", "Simple DNS Plus", ostype="Windows", cpes=[WIN_CPE])],
    "nginx": versions("http", "nginx", ["1.22.1", "1.24.0", "1.25.3"], "cpe:/a:igor_sysoev:nginx:%s"),
    "nginx-ssl": versions("http", "nginx", ["1.22.1", "1.24.0", "1.25.3"], "cpe:/a:igor_sysoev:nginx:%s", tunnel="ssl"),
    "apache": versions("http", "Apache httpd", ["2.4.57", "2.4.59", "2.4.62"], "cpe:/a:apache:http_server:%s",
                       extrainfo="(Debian)"),
    "apache-ssl": versions("http", "Apache httpd", ["2.4.57", "2.4.59", "2.4.62"], "cpe:/a:apache:http_server:%s",
                           extrainfo="(Debian)", tunnel="ssl"),
    "iis": [svc("http", "Microsoft IIS httpd", "10.0", ostype="Windows",
                cpes=["cpe:/a:microsoft:internet_information_services:10.0", WIN_CPE])],
    "httpapi": [svc("http", "Microsoft HTTPAPI httpd", "2.0", "SSDP/UPnP", ostype="Windows", cpes=[WIN_CPE])],
    "httpapi-ssl": [svc("http", "Microsoft HTTPAPI httpd", "2.0", "SSDP/UPnP", ostype="Windows", tunnel="ssl",
                        cpes=[WIN_CPE])],
    "msrpc": [svc("msrpc", "Microsoft Windows RPC", ostype="Windows", cpes=[WIN_CPE])],
    "ms-netbios": [svc("netbios-ssn", "Microsoft Windows netbios-ssn", ostype="Windows", cpes=[WIN_CPE])],
    "ms-ds": [svc("microsoft-ds", method="table", conf=3)],
    "kerberos": [svc("kerberos-sec", "Microsoft Windows Kerberos", ostype="Windows",
                     cpes=["cpe:/a:microsoft:kerberos", WIN_CPE])],
    "ad-ldap": [svc("ldap", "Microsoft Windows Active Directory LDAP", extrainfo="Domain: bench.test0., Site: Default-First-Site-Name",
                    ostype="Windows", cpes=[WIN_CPE])],
    "ad-ldap-ssl": [svc("ldap", "Microsoft Windows Active Directory LDAP", extrainfo="Domain: bench.test0., Site: Default-First-Site-Name",
                        ostype="Windows", tunnel="ssl", cpes=[WIN_CPE])],
    "kpasswd": [svc("kpasswd5", method="table", conf=3)],
    "rpc-http": [svc("ncacn_http", "Microsoft Windows RPC over HTTP", "1.0", ostype="Windows", cpes=[WIN_CPE])],
    "mssql": versions("ms-sql-s", "Microsoft SQL Server 2019", ["15.00 RTM", "15.00 CU25"],
                      "cpe:/a:microsoft:sql_server:2019", ostype="Windows", cpes=[WIN_CPE]),
    "rdp": [svc("ms-wbt-server", "Microsoft Terminal Services", ostype="Windows", tunnel="ssl", cpes=[WIN_CPE])],
    "mc-nmf": [svc("mc-nmf", ".NET Message Framing", ostype="Windows", cpes=[WIN_CPE])],
    "rpcbind": [svc("rpcbind", None, "2-4", "RPC #100000")],
    "nfs": [svc("nfs", None, "3-4", "RPC #100003")],
    "grafana": [svc("http", "Grafana http")],
    "mysql": versions("mysql", "MySQL", ["8.0.35", "8.0.36", "8.0.37"], "cpe:/a:mysql:mysql:%s"),
    "mariadb": versions("mysql", "MySQL", ["5.5.5-10.11.6-MariaDB-0+deb12u1", "5.5.5-10.11.9-MariaDB-0+deb12u1"],
                        "cpe:/a:mysql:mysql:%s"),
    "postgres": [svc("postgresql", "PostgreSQL DB", "9.6.0 or later", cpes=["cpe:/a:postgresql:postgresql"])],
    "redis": versions("redis", "Redis key-value store", ["7.0.15", "7.2.4"]),
    "werkzeug": versions("http", "Werkzeug httpd", ["2.3.7", "3.0.1"], "cpe:/a:pocoo:werkzeug:%s", extrainfo="Python 3.11.2"),
    "express": [svc("http", "Node.js Express framework", cpes=["cpe:/a:nodejs:node.js"])],
    "golang": [svc("http", "Golang net/http server", cpes=["cpe:/a:golang:go"])],
    "golang-ssl": [svc("http", "Golang net/http server", tunnel="ssl", cpes=["cpe:/a:golang:go"])],
    "jetty": versions("http", "Jetty", ["9.4.53.v20231009", "10.0.18"], "cpe:/a:mortbay:jetty:%s"),
    "tomcat": versions("http", "Apache Tomcat", ["10.1.16", "10.1.18"], "cpe:/a:apache:tomcat:%s"),
    "gunicorn": versions("http", "Gunicorn", ["20.1.0", "21.2.0"]),
    "caddy": [svc("http", "Caddy httpd")],
    "squid": versions("http-proxy", "Squid http proxy", ["5.7", "6.6"], "cpe:/a:squid-cache:squid:%s"),
    "elasticsearch": versions("http", "Elasticsearch REST API", ["8.11.1", "8.12.0"], cpes=["cpe:/a:elasticsearch:elasticsearch"],
                              extrainfo="name: node1; cluster: bench; Lucene 9.8.0"),
    "mongodb": versions("mongodb", "MongoDB", ["6.0.12", "6.0.13"], "cpe:/a:mongodb:mongodb:%s"),
    "rabbitmq": versions("amqp", "RabbitMQ", ["3.12.8", "3.12.12"], "cpe:/a:vmware:rabbitmq:%s", extrainfo="AMQP 0-9-1"),
    "cowboy": [svc("http", "Cowboy httpd")],
    "docker": versions("docker", "Docker", ["24.0.7", "25.0.3"], extrainfo="API 1.43", cpes=["cpe:/a:docker:docker"]),
    "dovecot-imap": [svc("imap", "Dovecot imapd", cpes=["cpe:/a:dovecot:dovecot"])],
    "dovecot-imaps": [svc("imap", "Dovecot imapd", tunnel="ssl", cpes=["cpe:/a:dovecot:dovecot"])],
    "dovecot-pop3": [svc("pop3", "Dovecot pop3d", cpes=["cpe:/a:dovecot:dovecot"])],
    "dovecot-pop3s": [svc("pop3", "Dovecot pop3d", tunnel="ssl", cpes=["cpe:/a:dovecot:dovecot"])],
    "sieve": [svc("sieve", "Dovecot Pigeonhole sieve", "1.0")],
    "samba": versions("netbios-ssn", "Samba smbd", ["4.6.2", "4.17.12"], "cpe:/a:samba:samba:%s", extrainfo="workgroup: WORKGROUP"),
    "samba-ds": versions("microsoft-ds", "Samba smbd", ["4.6.2", "4.17.12"], "cpe:/a:samba:samba:%s",
                         extrainfo="workgroup: WORKGROUP"),
    "netatalk": versions("afp", "Netatalk", ["3.1.12", "3.1.18"], "cpe:/a:netatalk:netatalk:%s", extrainfo="name: NAS; protocol 3.4"),
    "rsync": [svc("rsync", None, None, "protocol version 31")],
    "iscsi": [svc("iscsi", method="table", conf=3)],
    "telnet-cisco": [svc("telnet", "Cisco router telnetd", ostype="IOS", devicetype="router", cpes=["cpe:/o:cisco:ios"])],
    "cisco-http": [svc("http", "Cisco IOS http config", ostype="IOS", devicetype="router", cpes=["cpe:/o:cisco:ios"])],
    "cisco-https": [svc("http", "Cisco IOS http config", ostype="IOS", devicetype="router", tunnel="ssl", cpes=["cpe:/o:cisco:ios"])],
    "tcpwrapped": [svc("tcpwrapped")],
    "sccp": [svc("sccp", method="table", conf=3)],
    "h323": [svc("h323q931", method="table", conf=3)],
    "smart-install": [svc("smart-install", method="table", conf=3)],
    "cisco-sip": [svc("sip", "Cisco SIP Gateway", devicetype="VoIP adapter", cpes=["cpe:/o:cisco:ios"])],
    "hp-http": versions("http", "HP-ChaiSOE", ["1.0", "1.1"], devicetype="printer", cpes=["cpe:/h:hp:laserjet_m402dn"]),
    "hp-https": versions("http", "HP-ChaiSOE", ["1.0", "1.1"], devicetype="printer", tunnel="ssl", cpes=["cpe:/h:hp:laserjet_m402dn"]),
    "hp-ftp": [svc("ftp", "HP JetDirect ftpd", devicetype="printer", cpes=["cpe:/h:hp:jetdirect"])],
    "hp-telnet": [svc("telnet", "HP JetDirect printer telnetd", devicetype="printer", cpes=["cpe:/h:hp:jetdirect"])],
    "lpd": [svc("printer", method="table", conf=3)],
    "hp-ipp": [svc("ipp", "HP printer ipp", devicetype="printer")],
    "cups": versions("ipp", "CUPS", ["2.4", "2.4.7"], "cpe:/a:apple:cups:%s"),
    "jetdirect": [svc("jetdirect", method="table", conf=3)],
    "prnrequest": [svc("prnrequest", method="table", conf=3)],
    "prnstatus": [svc("prnstatus", method="table", conf=3)],
    "hp-wsd": [svc("http", "Microsoft HTTPAPI httpd", "2.0", "SSDP/UPnP", devicetype="printer")],
    "hp-soap": [svc("http", "HP Embedded Web Server", devicetype="printer")],
    "abyss-fp": [svc("abyss", method="table", conf=3, fp="bench-banner")],
    "cbt-fp": [svc("cbt", method="table", conf=3, fp="bench-json")],
    "synology-fp": [svc("unknown", method="table", conf=3, fp="bench-binary")],
    # UDP
    "dns-udp-bind": versions("domain", "ISC BIND", ["9.18.19-1~deb12u1", "9.18.24-1"], "cpe:/a:isc:bind:%s"),
    "dns-udp-win": [svc("domain", "Microsoft DNS", "6.1.7601 (1DB15F75)", ostype="Windows",
                        cpes=["cpe:/a:microsoft:dns_server:6.1.7601", WIN_CPE])],
    "ntp-udp": [svc("ntp", "NTP", "v4", "secondary server")],
    "ntp-udp-win": [svc("ntp", "NTP", "v3", ostype="Windows", cpes=[WIN_CPE])],
    "snmp-udp": [svc("snmp", "SNMPv1 server", extrainfo="public")],
    "snmp-udp-net": [svc("snmp", "net-snmp", extrainfo="SNMPv3 server", cpes=["cpe:/a:net-snmp:net-snmp"])],
}
HTTP_ALT = ["werkzeug", "express", "golang", "jetty", "tomcat", "gunicorn", "caddy", "nginx", "apache", "squid"]


def table_service(family):
    """The port table's guess for a port that is not open: name only, method table."""
    return svc(FAMILIES[family][0][0], method="table", conf=3)


# ---------------------------------------------------------------------------------------
# OS detection results: lists of (name, accuracy, line, osclasses); an osclass is
# (type, vendor, family, generation, cpes). A list below 100% gets an osfingerprint.

def oc(kind, vendor, family, gen, *cpes):
    return (kind, vendor, family, gen, cpes)


LINUX4 = oc("general purpose", "Linux", "Linux", "4.X", "cpe:/o:linux:linux_kernel:4")
LINUX5 = oc("general purpose", "Linux", "Linux", "5.X", "cpe:/o:linux:linux_kernel:5")
OSLISTS = {
    "linux-4.15": [("Linux 4.15 - 5.19", 100, 69035, (LINUX4, LINUX5))],
    "linux-5.0": [("Linux 5.0 - 5.14", 100, 69581, (LINUX5,))],
    "linux-2.6": [("Linux 2.6.32 - 3.13", 100, 55823, (oc("general purpose", "Linux", "Linux", "2.6.X", "cpe:/o:linux:linux_kernel:2.6"),
                                                      oc("general purpose", "Linux", "Linux", "3.X", "cpe:/o:linux:linux_kernel:3")))],
    "linux-fuzzy": [("Linux 4.15 - 5.19", 96, 69035, (LINUX4, LINUX5)),
                    ("Linux 5.0 - 5.14", 95, 69581, (LINUX5,)),
                    ("OpenWrt 21.02 (Linux 5.4)", 94, 88016, (oc("general purpose", "Linux", "Linux", "5.X", "cpe:/o:linux:linux_kernel:5.4"),)),
                    ("MikroTik RouterOS 7.2 - 7.5 (Linux 5.6.3)", 93, 80017,
                     (oc("router", "MikroTik", "RouterOS", "7.X", "cpe:/o:mikrotik:routeros:7", "cpe:/o:linux:linux_kernel:5.6.3"),)),
                    ("Linux 2.6.32 - 3.13", 92, 55823, (oc("general purpose", "Linux", "Linux", "3.X", "cpe:/o:linux:linux_kernel:3"),))],
    "win2019": [("Microsoft Windows Server 2019", 100, 81297,
                 (oc("general purpose", "Microsoft", "Windows", "2019", "cpe:/o:microsoft:windows_server_2019"),))],
    "win2022": [("Microsoft Windows Server 2022", 100, 81331,
                 (oc("general purpose", "Microsoft", "Windows", "2022", "cpe:/o:microsoft:windows_server_2022"),))],
    "win-fuzzy": [("Microsoft Windows Server 2016 build 10586 - 14393", 96, 82126,
                   (oc("general purpose", "Microsoft", "Windows", "2016", "cpe:/o:microsoft:windows_server_2016"),)),
                  ("Microsoft Windows 10 1507 - 1607", 94, 80542, (oc("general purpose", "Microsoft", "Windows", "10", "cpe:/o:microsoft:windows_10"),)),
                  ("Microsoft Windows Server 2012", 93, 81860, (oc("general purpose", "Microsoft", "Windows", "2012", "cpe:/o:microsoft:windows_server_2012"),)),
                  ("Microsoft Windows Server 2012 R2", 93, 81892,
                   (oc("general purpose", "Microsoft", "Windows", "2012", "cpe:/o:microsoft:windows_server_2012:r2"),))],
    "freebsd": [("FreeBSD 12.0-RELEASE - 13.0-CURRENT", 100, 44105,
                 (oc("general purpose", "FreeBSD", "FreeBSD", "12.X", "cpe:/o:freebsd:freebsd:12"),
                  oc("general purpose", "FreeBSD", "FreeBSD", "13.X", "cpe:/o:freebsd:freebsd:13")))],
    "synology": [("Synology DiskStation Manager 7.1 (Linux 4.4)", 100, 104447,
                  (oc("storage-misc", "Synology", "DiskStation Manager", "7.X", "cpe:/a:synology:diskstation_manager:7.1"),
                   oc("general purpose", "Linux", "Linux", "4.X", "cpe:/o:linux:linux_kernel:4.4")))],
    "cisco-ios": [("Cisco IOS 15.2 - 15.5", 100, 27116, (oc("router", "Cisco", "IOS", "15.X", "cpe:/o:cisco:ios:15"),))],
    "cisco-fuzzy": [("Cisco IOS 15.2 - 15.5", 95, 27116, (oc("router", "Cisco", "IOS", "15.X", "cpe:/o:cisco:ios:15"),)),
                    ("Cisco ASA 5500-X firewall (ASA 9.8)", 92, 26009,
                     (oc("firewall", "Cisco", "ASA", "9.X", "cpe:/h:cisco:asa_5500-x", "cpe:/o:cisco:adaptive_security_appliance_software:9.8"),)),
                    ("Cisco IOS XE 16.9", 91, 27420, (oc("router", "Cisco", "IOS XE", "16.X", "cpe:/o:cisco:ios_xe:16.9"),))],
    "hp-printer": [("HP LaserJet M402dn printer", 100, 36022, (oc("printer", "HP", "embedded", None, "cpe:/h:hp:laserjet_m402dn"),))],
    "hp-printer-2": [("HP LaserJet Pro M404dn printer", 100, 36078, (oc("printer", "HP", "embedded", None, "cpe:/h:hp:laserjet_pro_m404dn"),))],
}


# ---------------------------------------------------------------------------------------
# Profiles: what kind of machine, which ports it may have open (port -> families), how
# many, its OS, its TCP/IP stack, its host script.

def span(first, last, families):
    return {p: families for p in range(first, last + 1)}


PROFILES = [
    dict(name="linux-docker", weight=30, kmin=10, kmax=40, required=[22, 80, 443],
         ports={**{21: ["vsftpd"], 22: ["openssh-deb", "openssh-ubuntu"], 25: ["postfix", "exim"], 80: ["nginx", "apache"],
                   111: ["rpcbind"], 443: ["nginx-ssl", "apache-ssl"], 2049: ["nfs"], 2375: ["docker"], 3000: ["grafana"],
                   3306: ["mysql", "mariadb"], 5432: ["postgres"], 5672: ["rabbitmq"], 6379: ["redis"], 6443: ["golang-ssl"],
                   8443: ["nginx-ssl"], 9090: ["golang"], 9100: ["golang"], 9200: ["elasticsearch"], 9999: ["abyss-fp"],
                   10250: ["golang-ssl"], 15672: ["cowboy"], 27017: ["mongodb"]},
                **span(8000, 8039, HTTP_ALT)},
         udp={53: (0.0, ["dns-udp-bind"]), 123: (0.2, ["ntp-udp"]), 161: (0.1, ["snmp-udp-net"])},
         os=[("linux-4.15", 5), ("linux-5.0", 3), ("linux-fuzzy", 1)], ttl=64, ipid="All zeros", ts="1000HZ",
         hostscripts=[("clock-skew", 0.15)], filtered=0.3),
    dict(name="linux-mail", weight=15, kmin=10, kmax=24, required=[22, 25],
         ports={21: ["vsftpd"], 22: ["openssh-deb", "openssh-ubuntu"], 25: ["postfix"], 53: ["bind"], 80: ["nginx", "apache"],
                110: ["dovecot-pop3"], 111: ["rpcbind"], 143: ["dovecot-imap"], 443: ["nginx-ssl", "apache-ssl"],
                465: ["postfix-ssl"], 587: ["postfix"], 993: ["dovecot-imaps"], 995: ["dovecot-pop3s"], 4190: ["sieve"],
                3306: ["mysql", "mariadb"], 5432: ["postgres"], 6379: ["redis"], 7777: ["cbt-fp"], 8080: HTTP_ALT,
                8081: HTTP_ALT, 9100: ["golang"], 9200: ["elasticsearch"], 27017: ["mongodb"], 5672: ["rabbitmq"],
                15672: ["cowboy"]},
         udp={53: (0.6, ["dns-udp-bind"]), 123: (0.3, ["ntp-udp"]), 161: (0.1, ["snmp-udp-net"])},
         os=[("linux-4.15", 4), ("linux-5.0", 4), ("linux-2.6", 1), ("linux-fuzzy", 1)], ttl=64, ipid="All zeros", ts="1000HZ",
         hostscripts=[("clock-skew", 0.15)], filtered=0.4),
    dict(name="windows", weight=25, kmin=10, kmax=40, required=[135, 139, 445],
         ports={**{53: ["simple-dns"], 80: ["iis"], 88: ["kerberos"], 135: ["msrpc"], 139: ["ms-netbios"], 389: ["ad-ldap"],
                   443: ["httpapi-ssl"], 445: ["ms-ds"], 464: ["kpasswd"], 593: ["rpc-http"], 636: ["ad-ldap-ssl"],
                   1433: ["mssql"], 3268: ["ad-ldap"], 3269: ["ad-ldap-ssl"], 3389: ["rdp"], 5985: ["httpapi"],
                   9389: ["mc-nmf"], 47001: ["httpapi"]},
                **span(49664, 49699, ["msrpc"])},
         udp={53: (0.5, ["dns-udp-win"]), 123: (0.8, ["ntp-udp-win"]), 161: (0.0, ["snmp-udp"])},
         os=[("win2019", 5), ("win2022", 3), ("win-fuzzy", 2)], ttl=128, ipid="Incremental", ts=None,
         hostscripts=[("smb2-security-mode", 0.6), ("nbstat", 0.25)], filtered=0.5),
    dict(name="nas", weight=10, kmin=10, kmax=22, required=[22, 80, 139, 443, 445],
         ports={**{21: ["vsftpd"], 22: ["openssh-deb", "openssh-bsd"], 80: ["nginx"], 111: ["rpcbind"], 139: ["samba"],
                   443: ["nginx-ssl"], 445: ["samba-ds"], 548: ["netatalk"], 873: ["rsync"], 2049: ["nfs"], 3260: ["iscsi"],
                   5000: ["nginx"], 5001: ["nginx-ssl"], 6690: ["synology-fp"], 8080: HTTP_ALT},
                **span(9000, 9009, HTTP_ALT)},
         udp={53: (0.0, ["dns-udp-bind"]), 123: (0.3, ["ntp-udp"]), 161: (0.4, ["snmp-udp-net"])},
         os=[("synology", 3), ("freebsd", 2), ("linux-fuzzy", 1)], ttl=64, ipid="All zeros", ts="1000HZ",
         hostscripts=[("nbstat", 0.5), ("clock-skew", 0.2)], filtered=0.2),
    dict(name="router", weight=10, kmin=10, kmax=14, required=[22, 443],
         ports={22: ["cisco-ssh"], 23: ["telnet-cisco"], 80: ["cisco-http"], 179: ["tcpwrapped"], 443: ["cisco-https"],
                830: ["cisco-ssh"], 1720: ["h323"], 2000: ["sccp"], 4786: ["smart-install"], 5060: ["cisco-sip"],
                8080: ["cisco-http"], 8443: ["cisco-https"], 9443: ["cisco-https"], 10443: ["cisco-https"]},
         udp={53: (0.0, ["dns-udp-bind"]), 123: (0.8, ["ntp-udp"]), 161: (0.9, ["snmp-udp"])},
         os=[("cisco-ios", 4), ("cisco-fuzzy", 1)], ttl=255, ipid="Randomized", ts=None, hostscripts=[], filtered=0.7),
    dict(name="printer", weight=10, kmin=10, kmax=14, required=[80, 9100],
         ports={21: ["hp-ftp"], 23: ["hp-telnet"], 80: ["hp-http"], 443: ["hp-https"], 515: ["lpd"], 631: ["hp-ipp", "cups"],
                3910: ["prnrequest"], 3911: ["prnstatus"], 5357: ["hp-wsd"], 7627: ["hp-soap"], 8080: ["hp-http"],
                9100: ["jetdirect"], 9101: ["jetdirect"], 9102: ["jetdirect"], 9220: ["hp-soap"]},
         udp={53: (0.0, ["dns-udp-bind"]), 123: (0.0, ["ntp-udp"]), 161: (0.95, ["snmp-udp"])},
         os=[("hp-printer", 3), ("hp-printer-2", 2)], ttl=64, ipid="Incremental", ts="100HZ", hostscripts=[], filtered=0.1),
]
FILLER = [1, 7, 9, 13, 37, 79, 113, 119, 1723, 2121, 5900, 6000, 6667, 8888, 10000]
TCP_PORTS = sorted(set(FILLER).union(*[p["ports"].keys() for p in PROFILES]))
UDP_PORTS = [53, 123, 161]


# ---------------------------------------------------------------------------------------
# Scripts: (id, output, children) with the output as text (escaped when written) and the
# children as the XML nmap writes (already escaped).

TITLES = ["Dashboard", "Login - Bench Portal", "Caf\u00e9 \"Bench\" <Admin> & Co's portal", "Gitea: Git with a cup of tea",
          "Jenkins [Jenkins]", "401 Unauthorized", "Welcome to nginx!", "Kibana", "phpMyAdmin", "Apache Tomcat/10.1.16",
          "\u00dcberwachung \u2013 \u00dcbersicht", "\u76e3\u8996\u30c0\u30c3\u30b7\u30e5\u30dc\u30fc\u30c9",
          "Prometheus Time Series Collection and Processing Server", "Index of /", "It works!", "Bench -- status <beta>"]
FAMILY_TITLES = {"iis": ["IIS Windows Server"], "httpapi": ["Not Found"], "nginx": ["Welcome to nginx!", "Bench Portal"],
                 "apache": ["Apache2 Debian Default Page: It works", "Bench Wiki"], "cisco-http": ["Cisco Systems Login"],
                 "hp-http": ["HP LaserJet M402dn&nbsp;&nbsp;&nbsp;bench", "HP Color LaserJet"], "hp-soap": ["Site doesn't have a title."],
                 "hp-wsd": ["Not Found"], "cowboy": ["RabbitMQ Management"], "elasticsearch": ["Site doesn't have a title (application/json; charset=UTF-8)."]}


def b64(rng, n):
    return base64.b64encode(rng.getrandbits(8 * n).to_bytes(n, "big")).decode()


def hexbytes(rng, n):
    return "%0*x" % (2 * n, rng.getrandbits(8 * n))


def elem(key, text):
    return '<elem key="%s">%s</elem>\n' % (esc(key), esc(text)) if key is not None else "<elem>%s</elem>\n" % esc(text)


def ssh_key(rng, kind):
    if kind == "ed25519":
        return ("ssh-ed25519", 256, hexbytes(rng, 16), "AAAAC3NzaC1lZDI1NTE5AAAAI" + b64(rng, 33)[:43], "ED25519")
    if kind == "ecdsa":
        return ("ecdsa-sha2-nistp256", 256, hexbytes(rng, 16),
                "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBB" + b64(rng, 96)[:128], "ECDSA")
    return ("ssh-rsa", 3072, hexbytes(rng, 16), "AAAAB3NzaC1yc2EAAAADAQABAAABgQ" + b64(rng, 384)[:512], "RSA")


def ssh_hostkey(keys):
    output = "\n" + "\n".join("  %d %s (%s)" % (bits, ":".join(fp[k:k + 2] for k in range(0, 32, 2)), label)
                              for (_, bits, fp, _, label) in keys)
    children = "".join("<table>\n" + elem("fingerprint", fp) + elem("type", kind) + elem("bits", str(bits)) + elem("key", key)
                       + "</table>\n" for (kind, bits, fp, key, _) in keys)
    return ("ssh-hostkey", output, children)


def ssl_cert(rng, cn, days_from):
    not_before = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(1780000000 + days_from * 86400))
    not_after = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(1780000000 + (days_from + 90) * 86400 - 1))
    san = "DNS:%s, DNS:www.%s" % (cn, cn)
    output = ("Subject: commonName=%s/organizationName=Bench Lab/countryName=US\nSubject Alternative Name: %s\n"
              "Not valid before: %s\nNot valid after:  %s" % (cn, san, not_before, not_after))
    pem = "-----BEGIN CERTIFICATE-----\n" + "\n".join(b64(rng, 48) for _ in range(6)) + "\n-----END CERTIFICATE-----\n"
    children = ('<table key="subject">\n' + elem("commonName", cn) + elem("organizationName", "Bench Lab") + elem("countryName", "US")
                + '</table>\n<table key="issuer">\n' + elem("commonName", "Bench CA R3") + elem("organizationName", "Bench Lab")
                + '</table>\n<table key="pubkey">\n' + elem("type", "rsa") + elem("bits", "2048") + elem("exponent", "65537")
                + '</table>\n<table key="extensions">\n<table>\n' + elem("name", "X509v3 Subject Alternative Name")
                + elem("value", san) + "</table>\n</table>\n" + elem("sig_algo", "sha256WithRSAEncryption")
                + '<table key="validity">\n' + elem("notBefore", not_before) + elem("notAfter", not_after) + "</table>\n"
                + elem("md5", hexbytes(rng, 16)) + elem("sha1", hexbytes(rng, 20)) + elem("pem", pem))
    return ("ssl-cert", output, children)


def http_title(rng, family, i, port):
    roll = rng.random()
    if family == "grafana" or (roll < 0.08 and family not in FAMILY_TITLES):
        path = "/login" if family != "grafana" or roll < 0.5 else "/login?redirectTo=%2F"
        return ("http-title", "Grafana\nRequested resource was %s" % path, elem("title", "Grafana") + elem("redirect_url", path))
    if roll < 0.16:
        url = "https://%s:%d/" % (hostname(i), port + 1 if port != 80 else 443)
        return ("http-title", "Did not follow redirect to %s" % url, elem("redirect_url", url))
    title = rng.choice(FAMILY_TITLES.get(family, TITLES))
    if title.startswith("Site doesn't have a title"):
        return ("http-title", title, "")
    return ("http-title", title, elem("title", title))


def ftp_anon(rng):
    lines = ["Anonymous FTP login allowed (FTP code 230)",
             "-rw-r--r--    1 0        0            %5d Jan 01  2026 README" % rng.randint(100, 9999),
             "drwxr-xr-x    2 0        0             4096 Jan 01  2026 pub"]
    if rng.random() < 0.5:
        lines.append("drwxrwxrwx    2 0        0             4096 Mar 14  2026 incoming [NSE: writeable]")
    return ("ftp-anon", "\n".join(lines), "")


def smtp_commands(i, extra):
    return ("smtp-commands", "mail.%s, PIPELINING, SIZE %d, VRFY, ETRN, STARTTLS, ENHANCEDSTATUSCODES, 8BITMIME, DSN, "
            "SMTPUTF8, CHUNKING" % (hostname(i), extra), "")


def dns_nsid(version):
    return ("dns-nsid", "\n  bind.version: %s" % version, elem("bind.version", version))


def rpcinfo(nfs):
    rows = [("100000", "2,3,4", "111", "tcp", "rpcbind"), ("100000", "2,3,4", "111", "udp", "rpcbind")]
    if nfs:
        rows += [("100003", "3,4", "2049", "tcp", "nfs"), ("100005", "1,2,3", "43271", "tcp", "mountd"),
                 ("100021", "1,3,4", "39443", "tcp", "nlockmgr")]
    output = "\n  program version    port/proto  service\n" + "\n".join(
        "  %-7s %-12s %5s/%-4s  %s" % row for row in rows)
    children = ""
    for program in dict.fromkeys(r[0] for r in rows):
        children += '<table key="%s">\n' % program
        for (_, vers, port, proto, _) in (r for r in rows if r[0] == program):
            children += ('<table key="%s">\n' % proto + elem("port", port) + '<table key="version">\n'
                         + "".join(elem(None, v) for v in vers.split(",")) + "</table>\n</table>\n")
        children += "</table>\n"
    return ("rpcinfo", output, children)


def host_script(kind, rng, i, variant=0):
    if kind == "smb2-security-mode":
        text = ("Message signing enabled but not required", "Message signing enabled and required")[variant % 2]
        return ("smb2-security-mode", "\n  3:1:1: \n    %s" % text, '<table key="3:1:1">\n' + elem(None, text) + "</table>\n")
    if kind == "nbstat":
        name = ("H%d" % i, "BENCH%d" % i, "NAS%d" % i)[variant % 3]
        return ("nbstat", "NetBIOS name: %s, NetBIOS user: <unknown>, NetBIOS MAC: <unknown> (unknown)" % name,
                elem("server_name", name) + elem("user", "<unknown>") + elem("mac", "<unknown>")
                + '<table key="names">\n<table>\n' + elem("name", name) + elem("flags", "<active>") + elem("suffix", "0x00")
                + "</table>\n</table>\n")
    skew = (0, 1, -1, 3599)[variant % 4]
    text = "mean: %ds, deviation: 0s, median: %ds" % (skew, skew) if skew < 3600 else "mean: 59m59s, deviation: 0s, median: 59m59s"
    return ("clock-skew", text, elem("mean", str(skew)) + elem("stddev", "0") + elem("median", str(skew)))


def scripted(svc_tuple):
    """Whether port_script may give this service a script."""
    return svc_tuple[0] in ("ssh", "http", "http-proxy", "smtp", "ftp", "domain", "rpcbind", "ms-wbt-server") or svc_tuple[6] == "ssl"


def port_script(rng, i, port, family, svc_tuple):
    name, tunnel = svc_tuple[0], svc_tuple[6]
    roll = rng.random()
    if name == "ssh":
        if roll < 0.95:
            kinds = ["rsa"] if family == "cisco-ssh" else (["rsa", "ecdsa", "ed25519"] if rng.random() < 0.6 else ["ecdsa", "ed25519"])
            return ssh_hostkey([ssh_key(rng, k) for k in kinds])
        return None
    if tunnel == "ssl" or name == "ms-wbt-server":
        if roll < 0.75:
            return ssl_cert(rng, hostname(i), rng.randint(0, 60))
        return http_title(rng, family, i, port) if name == "http" and roll < 0.9 else None
    if name in ("http", "http-proxy"):
        return http_title(rng, family, i, port) if roll < 0.85 else None
    if name == "smtp":
        return smtp_commands(i, 10240000) if roll < 0.6 else None
    if name == "ftp":
        return ftp_anon(rng) if roll < 0.4 else None
    if name == "domain":
        return dns_nsid(svc_tuple[2] or "9.18.19-1~deb12u1") if roll < 0.5 else None
    if name == "rpcbind":
        return rpcinfo(rng.random() < 0.5) if roll < 0.9 else None
    return None


# ---------------------------------------------------------------------------------------
# Hosts. A host entry is a dict; a port is a list
# [proto, portid, state, family, version index, script] (proto "tcp" or "udp").

def weighted(rng, pairs):
    total = sum(w for _, w in pairs)
    r = rng.random() * total
    for item, w in pairs:
        r -= w
        if r < 0:
            return item
    return pairs[-1][0]


def make_port(rng, i, profile, proto, portid, state="open"):
    families = profile["ports"][portid] if proto == "tcp" else profile["udp"][portid][1]
    family = rng.choice(families)
    vidx = rng.randrange(len(FAMILIES[family]))
    script = port_script(rng, i, portid, family, FAMILIES[family][vidx]) if state == "open" and proto == "tcp" else None
    return [proto, portid, state, family, vidx, script]


def make_host(rng, i):
    profile = weighted(rng, [(p, p["weight"]) for p in PROFILES])
    pool = sorted(profile["ports"])
    k = min(len(pool), profile["kmin"] + int((profile["kmax"] - profile["kmin"] + 1) * rng.random() ** 1.7))
    chosen = list(profile["required"])
    rest = [p for p in pool if p not in chosen]
    chosen += rng.sample(rest, max(0, k - len(chosen)))
    ports = [make_port(rng, i, profile, "tcp", p) for p in sorted(chosen)]
    filtered = rng.random() < profile["filtered"]
    if filtered and rng.random() < 0.3:
        # A firewall that rejects ident: 113 listed closed, the rest filtered.
        ports.append(["tcp", 113, "closed", None, 0, None])
        ports.sort(key=lambda p: p[1])
    for portid in UDP_PORTS:
        chance, _ = profile["udp"][portid]
        ports.append(make_port(rng, i, profile, "udp", portid, "open" if rng.random() < chance else "open|filtered"))
    oskey = weighted(rng, profile["os"])
    distance = rng.choice((1, 2, 2, 2, 3))
    return {
        "i": i, "profile": profile["name"],
        "names": [(hostname(i), "PTR")] if rng.random() < 0.9 else [],
        "reason": "echo-reply" if rng.random() < 0.9 else "syn-ack",
        "ttl": profile["ttl"] - (distance - 1), "distance": distance,
        "filtered": filtered, "ports": ports, "os": oskey, "acc_shift": 0, "class_shift": False,
        "hostscript": None, "lastboot_days": rng.randint(1, 400), "timedout": False,
        "ipid": profile["ipid"], "ts": profile["ts"], "cpe_shift": False,
    }


def add_host_script(rng, host):
    profile = PROFILE_BY_NAME[host["profile"]]
    for kind, chance in profile["hostscripts"]:
        if rng.random() < chance:
            host["hostscript"] = host_script(kind, rng, host["i"])
            return


PROFILE_BY_NAME = {p["name"]: p for p in PROFILES}


def copy_host(host):
    h = dict(host)
    h["ports"] = [list(p) for p in host["ports"]]
    h["names"] = list(host["names"])
    return h


# ---------------------------------------------------------------------------------------
# Changes between the scans.

def open_tcp(host):
    return [p for p in host["ports"] if p[0] == "tcp" and p[2] == "open"]


def change(rng, host, kind):
    """Applies one change to host (a copy); returns the kind applied (or a fallback)."""
    i, profile = host["i"], PROFILE_BY_NAME[host["profile"]]
    opened = open_tcp(host)
    if kind == "open":
        have = {p[1] for p in host["ports"] if p[0] == "tcp"}
        free = [p for p in sorted(profile["ports"]) if p not in have]
        if not free or len(opened) >= 40:
            return change(rng, host, "version")
        host["ports"].append(make_port(rng, i, profile, "tcp", rng.choice(free)))
        host["ports"].sort(key=lambda p: (p[0] == "udp", p[1]))
        return kind
    if kind == "close":
        if len(opened) <= 10:
            return change(rng, host, "script")
        host["ports"].remove(rng.choice(opened))
        return kind
    if kind == "filter":
        if host["filtered"]:
            return change(rng, host, "close")
        port = rng.choice(opened)
        port[2], port[5] = "filtered", None
        return kind
    if kind == "udp":
        port = rng.choice([p for p in host["ports"] if p[0] == "udp"])
        port[2] = "open" if port[2] != "open" else "open|filtered"
        return kind
    if kind == "version":
        bumpable = [p for p in opened if len(FAMILIES[p[3]]) > 1]
        if not bumpable:
            return change(rng, host, "script")
        port = rng.choice(bumpable)
        port[4] = port[4] + 1 if port[4] + 1 < len(FAMILIES[port[3]]) else port[4] - 1
        if port[5] is not None and port[5][0] == "dns-nsid":
            port[5] = dns_nsid(FAMILIES[port[3]][port[4]][2])
        return kind
    if kind == "script":
        with_script = [p for p in opened if p[5] is not None]
        if not with_script:
            return change(rng, host, "script-add")
        port = rng.choice(with_script)
        sid = port[5][0]
        if sid == "ssh-hostkey":
            keys = port[5]
            kinds = [("rsa" if "RSA" in line else "ecdsa" if "ECDSA" in line else "ed25519")
                     for line in keys[1].strip("\n").split("\n")]
            port[5] = ssh_hostkey([ssh_key(rng, k) for k in kinds])  # the host's keys were regenerated
        elif sid == "ssl-cert":
            port[5] = ssl_cert(rng, hostname(i), rng.randint(61, 120))  # renewed
        elif sid in ("http-title", "ftp-anon"):
            old = port[5]
            for _ in range(50):
                port[5] = http_title(rng, port[3], i, port[1]) if sid == "http-title" else ftp_anon(rng)
                if port[5] != old:
                    break
            else:
                raise AssertionError("no other output for %s" % sid)
        elif sid == "smtp-commands":
            port[5] = smtp_commands(i, 52428800)
        elif sid == "rpcinfo":
            port[5] = rpcinfo("nfs" not in port[5][1])
        else:  # dns-nsid: the version string the server reports changed, not the service
            port[5] = dns_nsid(port[5][1].split(": ", 1)[1] + "-hardened")
        return kind
    if kind == "script-add":
        candidates = [p for p in opened if p[5] is None and scripted(FAMILIES[p[3]][p[4]])]
        if not candidates:
            port = rng.choice([p for p in opened if p[5] is not None] or opened)
            port[5] = None
            return "script-remove"
        port = rng.choice(candidates)
        for _ in range(50):
            port[5] = port_script(rng, i, port[1], port[3], FAMILIES[port[3]][port[4]])
            if port[5] is not None:
                return kind
        raise AssertionError("no script for %s" % (port,))
    if kind == "hostscript":
        if host["hostscript"] is None:
            kinds = [k for k, _ in profile["hostscripts"]] or ["clock-skew"]
            host["hostscript"] = host_script(rng.choice(kinds), rng, i)
            return "hostscript-add"
        if rng.random() < 0.25:
            host["hostscript"] = None
            return "hostscript-remove"
        sid = host["hostscript"][0]
        host["hostscript"] = next(s for s in (host_script(sid, rng, i, v) for v in (1, 2, 3)) if s != host["hostscript"])
        return kind
    if kind == "os":
        others = [k for k, _ in profile["os"] if k != host["os"]]
        host["os"] = rng.choice(others)
        return kind
    if kind == "rename":
        if not host["names"]:
            host["names"] = [(hostname(i), "PTR")]
        else:
            host["names"] = [("h%d-r.bench.test" % i, "PTR")]
        return kind
    if kind == "extra-name":
        host["names"] = host["names"] + [("zz-alias-%d.bench.test" % i, "PTR")] if host["names"] else [(hostname(i), "PTR")]
        return kind
    if kind == "timeout":
        host["timedout"] = True
        return kind
    # What ndiff does not compare.
    if kind == "accuracy":
        host["acc_shift"] = -rng.randint(1, 3)
        return kind
    if kind == "osclass":
        host["class_shift"] = True
        return kind
    if kind == "cpe":
        host["cpe_shift"] = True
        return kind
    if kind == "reboot":
        host["lastboot_days"] = 0
        return kind
    if kind == "route":
        host["distance"] = host["distance"] + 1
        host["ttl"] -= 1
        return kind
    raise ValueError(kind)


FINDING_CHANGES = [("open", 16), ("close", 10), ("filter", 4), ("udp", 4), ("version", 16), ("script", 14),
                   ("script-add", 4), ("hostscript", 8), ("os", 8), ("rename", 2), ("extra-name", 1), ("timeout", 1),
                   ("multi", 4)]
NOISE_CHANGES = [("accuracy", 1), ("osclass", 1), ("cpe", 1), ("reboot", 1), ("route", 1)]


def second_entry(rng, entry, how):
    """The second entry of a host listed twice: a later batch, seeing the same or a port
    more or less, or no host script this time."""
    e = copy_host(entry)
    e["entry"] = 1
    kind, arg = how
    if kind == "drop":
        keep = [p for p in e["ports"] if not (p[0] == "tcp" and p[1] == arg)]
        if len(keep) != len(e["ports"]) and len([p for p in keep if p[0] == "tcp" and p[2] == "open"]) >= 10:
            e["ports"] = keep
    elif kind == "add":
        if not any(p[0] == "tcp" and p[1] == arg[1] for p in e["ports"]):
            e["ports"].append(list(arg))
            e["ports"].sort(key=lambda p: (p[0] == "udp", p[1]))
    elif kind == "nohs":
        e["hostscript"] = None
    return e


def dup_variant(rng, host):
    """How a second entry differs from the first (most often: not at all)."""
    roll = rng.random()
    if roll < 0.7:
        return ("same", None)
    opened = open_tcp(host)
    if roll < 0.85 and len(opened) > 10:
        return ("drop", rng.choice(opened)[1])
    if roll < 0.95:
        profile = PROFILE_BY_NAME[host["profile"]]
        have = {p[1] for p in host["ports"] if p[0] == "tcp"}
        free = [p for p in sorted(profile["ports"]) if p not in have]
        if free:
            return ("add", make_port(rng, host["i"], profile, "tcp", rng.choice(free)))
    return ("nohs", None)


# ---------------------------------------------------------------------------------------
# Writing.

_service_cache = {}


def service_xml(s, cpe_shift, vol):
    name, product, version, extrainfo, ostype, devicetype, tunnel, method, conf, cpes, fp = s
    key = (s, cpe_shift)
    cached = None if fp else _service_cache.get(key)
    if cached is not None:
        return cached
    attrs = ['<service name="%s"' % esc(name)]
    for attr, value in (("product", product), ("version", version), ("extrainfo", extrainfo),
                        ("ostype", ostype if not cpe_shift else (ostype or "Unix")), ("devicetype", devicetype)):
        if value:
            attrs.append(' %s="%s"' % (attr, esc(value)))
    if fp:
        attrs.append(' servicefp="%s"' % esc(servicefp(fp, vol)))
    if tunnel:
        attrs.append(' tunnel="%s"' % tunnel)
    attrs.append(' method="%s" conf="%d"' % (method, 8 if cpe_shift and conf == 10 else conf))
    if cpe_shift:  # a newer nmap-service-probes: another cpe, another confidence
        cpes = cpes + ("cpe:/a:bench:%s" % name,)
    if cpes:
        attrs.append(">" + "".join("<cpe>%s</cpe>" % esc(c) for c in cpes) + "</service>")
    else:
        attrs.append("/>")
    out = "".join(attrs)
    if not fp:
        _service_cache[key] = out
    return out


FP_RESPONSES = {
    "bench-banner": [("NULL", "Welcome to the bench service\\r\\n"), ("GenericLines", "Welcome to the bench service\\r\\nERR unknown command\\r\\nERR unknown command\\r\\n"),
                     ("HTTPOptions", "Welcome to the bench service\\r\\nERR \"OPTIONS / HTTP/1.0\" <unknown>\\r\\n")],
    "bench-json": [("NULL", "{\"service\":\"bench\",\"version\":2}\\n"), ("GetRequest", "{\"error\":\"bad request\",\"code\":400}\\n")],
    "bench-binary": [("NULL", "\\x80\\0\\0\\x1c\\0\\0\\0\\x01SYNO\\0\\x0c\\0\\0\\0\\0"),
                     ("RPCCheck", "\\x80\\0\\0\\x1c\\0\\0\\0\\x01SYNO\\0\\x0c\\0\\0\\0\\x02")],
}


def servicefp(kind, vol):
    """A service fingerprint as nmap writes it (SF: prefixes removed), with this scan's
    date and time in it."""
    when = vol.int(0x6750_0000, 0x6760_0000)
    text = "SF-Port:V=7.93%%I=7%%D=11/%d%%Time=%X%%P=x86_64-pc-linux-gnu" % (23 + vol.int(0, 1), when)
    for probe, response in FP_RESPONSES[kind]:
        text += '%%r(%s,%X,"%s")' % (probe, len(response), response.replace(" ", "\\x20"))
    text += ";"
    return "\n".join(text[k:k + 80] for k in range(0, len(text), 80))


def osfingerprint(vol, open_port, closed_port, udp_port, distance):
    tm = vol.int(0x6750_0000, 0x6760_0000)
    sp = vol.int(0x100, 0x108)
    text = ("SCAN(V=7.93%%E=4%%D=11/%d%%OT=%d%%CT=%d%%CU=%d%%PV=Y%%DS=%d%%DC=T%%G=Y%%TM=%X%%P=x86_64-pc-linux-gnu)"
            "SEQ(SP=%X%%GCD=1%%ISR=%X%%TI=Z%%CI=Z%%II=I%%TS=A)OPS(O1=M5B4ST11NW7%%O2=M5B4ST11NW7%%O3=M5B4NNT11NW7%%"
            "O4=M5B4ST11NW7%%O5=M5B4ST11NW7%%O6=M5B4ST11)WIN(W1=FE88%%W2=FE88%%W3=FE88%%W4=FE88%%W5=FE88%%W6=FE88)"
            "ECN(R=Y%%DF=Y%%T=40%%W=FAF0%%O=M5B4NNSNW7%%CC=Y%%Q=)T1(R=Y%%DF=Y%%T=40%%S=O%%A=S+%%F=AS%%RD=0%%Q=)"
            "T2(R=N)T3(R=N)T4(R=Y%%DF=Y%%T=40%%W=0%%S=A%%A=Z%%F=R%%O=%%RD=0%%Q=)T5(R=Y%%DF=Y%%T=40%%W=0%%S=Z%%A=S+%%F=AR%%O=%%RD=0%%Q=)"
            "T6(R=Y%%DF=Y%%T=40%%W=0%%S=A%%A=Z%%F=R%%O=%%RD=0%%Q=)T7(R=Y%%DF=Y%%T=40%%W=0%%S=Z%%A=S+%%F=AR%%O=%%RD=0%%Q=)"
            "U1(R=Y%%DF=N%%T=40%%IPL=164%%UN=0%%RIPL=G%%RID=G%%RIPCK=G%%RUCK=G%%RUD=G)IE(R=Y%%DFI=N%%T=40%%CD=S)"
            % (23 + vol.int(0, 1), open_port, closed_port, udp_port, distance, tm, sp, sp + 5))
    return "\n".join("OS:" + text[k:k + 68] for k in range(0, len(text), 68))


def host_xml(h, scan_start, position, vol, frozen_ref):
    i = h["i"]
    addr = address(i)
    # The start tag and <times> change on every scan (seclab leaves them out when comparing).
    tvol = Volatile(scan_start, i, h.get("entry", 0))
    start = scan_start + (position // 64) * 45 + tvol.int(0, 20)
    end = start + tvol.int(30, 600)
    out = []
    if h["timedout"]:
        out.append('<host starttime="%d" endtime="%d" timedout="true">' % (start, end))
    else:
        out.append('<host starttime="%d" endtime="%d">' % (start, end))
    out.append('<status state="up" reason="%s" reason_ttl="%d"/>\n<address addr="%s" addrtype="ipv4"/>\n<hostnames>\n'
               % (h["reason"], h["ttl"], addr))
    for name, kind in h["names"]:
        out.append('<hostname name="%s" type="%s"/>\n' % (esc(name), kind))
    out.append("</hostnames>\n")
    if h["timedout"]:
        out.append('<times srtt="%d" rttvar="%d" to="%d"/>\n</host>\n' % (tvol.int(300, 90000), tvol.int(50, 5000), 1000000))
        return "".join(out)

    tcp = [p for p in h["ports"] if p[0] == "tcp"]
    listed = {p[1] for p in tcp}
    hidden = [p for p in TCP_PORTS if p not in listed]
    state, reason = ("filtered", "no-response") if h["filtered"] else ("closed", "reset")
    out.append('<ports><extraports state="%s" count="%d">\n<extrareasons reason="%s" count="%d" proto="tcp" ports="%s"/>\n'
               '</extraports>\n' % (state, len(hidden), reason, len(hidden), ranges(hidden)))
    ttl, cpe_shift = h["ttl"], h["cpe_shift"]
    for proto, portid, pstate, family, vidx, script in h["ports"]:
        if pstate == "open":
            preason, pttl = ("syn-ack", ttl) if proto == "tcp" else ("udp-response", ttl)
            s = FAMILIES[family][vidx]
        elif pstate == "closed":
            preason, pttl = "reset", ttl
            s = svc("ident" if portid == 113 else "unknown", method="table", conf=3)
        else:
            preason, pttl = "no-response", 0
            s = table_service(family)
        out.append('<port protocol="%s" portid="%d"><state state="%s" reason="%s" reason_ttl="%d"/>'
                   % (proto, portid, pstate, preason, pttl))
        out.append(service_xml(s, cpe_shift and pstate == "open", vol))
        if script is not None:
            sid, output, children = script
            if children:
                out.append('<script id="%s" output="%s">%s</script>' % (sid, esc(output), children))
            else:
                out.append('<script id="%s" output="%s"/>' % (sid, esc(output)))
        out.append("</port>\n")
    out.append("</ports>\n")

    # OS detection.
    open_port = next((p[1] for p in tcp if p[2] == "open"), 22)
    closed_port = hidden[0] if not h["filtered"] else next((p[1] for p in tcp if p[2] == "closed"), 0)
    udp_port = vol.int(30000, 44000)
    out.append('<os><portused state="open" proto="tcp" portid="%d"/>\n' % open_port)
    if closed_port:
        out.append('<portused state="closed" proto="tcp" portid="%d"/>\n' % closed_port)
    out.append('<portused state="closed" proto="udp" portid="%d"/>\n' % udp_port)
    matches = OSLISTS[h["os"]]
    for name, acc, line, classes in matches:
        acc = min(100, acc + h["acc_shift"]) if acc < 100 or h["acc_shift"] else acc
        out.append('<osmatch name="%s" accuracy="%d" line="%d">\n' % (esc(name), acc, line + (7 if h["class_shift"] else 0)))
        for kind, vendor, family, gen, cpes in classes:
            out.append('<osclass type="%s" vendor="%s" osfamily="%s"' % (esc(kind), esc(vendor), esc(family)))
            if gen:
                out.append(' osgen="%s"' % esc(gen))
            out.append(' accuracy="%d">' % acc)
            out.append("".join("<cpe>%s</cpe>" % esc(c) for c in cpes) + "</osclass>\n")
        out.append("</osmatch>\n")
    if matches[0][1] < 100:
        out.append('<osfingerprint fingerprint="%s"/>\n'
                   % esc(osfingerprint(vol, open_port, closed_port or 1, udp_port, h["distance"])))
    out.append("</os>\n")
    if h["ts"] is not None:
        lastboot = 1790000000 - h["lastboot_days"] * 86400 - (i * 7919) % 86400
        if h["lastboot_days"] == 0:
            lastboot = scan_start - 3 * 86400 // 7
        seconds = (frozen_ref if frozen_ref is not None else start) - lastboot
        out.append('<uptime seconds="%d" lastboot="%s"/>\n' % (seconds, ctime(lastboot)))
    out.append('<distance value="%d"/>\n' % h["distance"])
    out.append('<tcpsequence index="%d" difficulty="Good luck!" values="%s"/>\n'
               % (vol.int(250, 263), ",".join("%X" % (vol.next() & 0xFFFFFFFF) for _ in range(6))))
    if h["ipid"] == "All zeros":
        ipids = "0,0,0,0,0,0"
    elif h["ipid"] == "Incremental":
        base = vol.int(0, 0xFF00)
        ipids = ",".join("%X" % (base + k) for k in range(6))
    else:
        ipids = ",".join("%X" % (vol.next() & 0xFFFF) for _ in range(6))
    out.append('<ipidsequence class="%s" values="%s"/>\n' % (h["ipid"], ipids))
    if h["ts"] is None:
        out.append('<tcptssequence class="none returned (unsupported)"/>\n')
    else:
        base = vol.int(0, 0xFFFF0000)
        out.append('<tcptssequence class="%s" values="%s"/>\n' % (h["ts"], ",".join("%X" % (base + 0x65 * k) for k in range(6))))
    if h["hostscript"] is not None:
        sid, output, children = h["hostscript"]
        out.append('<hostscript><script id="%s" output="%s">%s</script></hostscript>' % (sid, esc(output), children))
    trace_port = closed_port or open_port
    out.append('<trace port="%d" proto="tcp">\n' % trace_port)
    for hop in range(1, h["distance"]):
        out.append('<hop ttl="%d" ipaddr="127.127.255.%d" rtt="%.2f" host="gw%d.bench.test"/>\n'
                   % (hop, hop, vol.int(10, 300) / 100, hop))
    if h["names"]:
        out.append('<hop ttl="%d" ipaddr="%s" rtt="%.2f" host="%s"/>\n'
                   % (h["distance"], addr, vol.int(20, 900) / 100, esc(h["names"][0][0])))
    else:
        out.append('<hop ttl="%d" ipaddr="%s" rtt="%.2f"/>\n' % (h["distance"], addr, vol.int(20, 900) / 100))
    out.append("</trace>\n")
    out.append('<times srtt="%d" rttvar="%d" to="%d"/>\n</host>\n' % (tvol.int(300, 9000), tvol.int(50, 3000), 100000))
    return "".join(out)


ARGS = ("nmap -sS -sU -sV -O --traceroute --script=ssh-hostkey,ssl-cert,http-title,smtp-commands,ftp-anon,dns-nsid,rpcinfo,"
        "smb2-security-mode,nbstat,clock-skew -p T:%s,U:%s -oX rich.xml -iL targets.txt"
        % (ranges(TCP_PORTS), ",".join(map(str, UDP_PORTS))))


def write(path, entries, scan_start, seed, salt, frozen):
    with open(path, "w", newline="\n") as f:
        f.write('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE nmaprun>\n'
                '<?xml-stylesheet href="file:///usr/bin/../share/nmap/nmap.xsl" type="text/xsl"?>\n')
        f.write("<!-- Nmap 7.93 scan initiated %s as: %s -->\n" % (ctime(scan_start), esc(ARGS)))
        f.write('<nmaprun scanner="nmap" args="%s" start="%d" startstr="%s" version="7.93" xmloutputversion="1.05">\n'
                % (esc(ARGS), scan_start, ctime(scan_start)))
        f.write('<scaninfo type="syn" protocol="tcp" numservices="%d" services="%s"/>\n'
                '<scaninfo type="udp" protocol="udp" numservices="%d" services="%s"/>\n'
                '<verbose level="0"/>\n<debugging level="0"/>\n'
                % (len(TCP_PORTS), ranges(TCP_PORTS), len(UDP_PORTS), ",".join(map(str, UDP_PORTS))))
        buf = []
        for position, h in enumerate(entries):
            # Frozen: the same values in both files and in both entries of a host listed twice,
            # so that entries seeing the same are byte-identical but for their times.
            vol = Volatile(seed, h["i"]) if frozen else Volatile(seed, salt, h["i"], h.get("entry", 0))
            buf.append(host_xml(h, scan_start, position, vol, 1795300000 if frozen else None))
            if len(buf) >= 512:
                f.write("".join(buf))
                buf = []
        f.write("".join(buf))
        finished = scan_start + 86000
        f.write('<runstats><finished time="%d" timestr="%s" summary="Nmap done at %s; %d IP addresses (%d hosts up) '
                'scanned in %d.00 seconds" elapsed="%d.00" exit="success"/><hosts up="%d" down="0" total="%d"/>\n'
                '</runstats>\n</nmaprun>\n'
                % (finished, ctime(finished), ctime(finished), len(entries), len(entries), finished - scan_start,
                   finished - scan_start, len(entries), len(entries)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("hosts", type=int)
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--frozen", action="store_true", help="values that change on every scan stay equal")
    args = parser.parse_args()
    count = args.hosts
    assert 2 * count < (1 << 22), "too many hosts for 127.64.0.0/10"
    rng = random.Random(args.seed)

    hosts = []
    for i in range(count):
        h = make_host(rng, i)
        add_host_script(rng, h)
        h["entry"] = 0
        hosts.append(h)

    # Hosts listed twice, and how their second entry differs.
    dups = sorted(rng.sample(range(count), max(1, count // 125)))
    dup_how = {i: dup_variant(rng, hosts[i]) for i in dups}

    # AFTER: copies, some changed.
    after = [copy_host(h) for h in hosts]
    tally = {}
    changed = rng.sample(range(count), max(1, count * 3 // 100))
    for i in changed:
        kind = weighted(rng, FINDING_CHANGES)
        h = after[i]
        if kind == "multi":
            for _ in range(rng.randint(2, 3)):
                done = change(rng, h, weighted(rng, FINDING_CHANGES[:-4]))
                tally["in-multi:" + done] = tally.get("in-multi:" + done, 0) + 1
        else:
            kind = change(rng, h, kind)
        tally[kind] = tally.get(kind, 0) + 1
    changed_set = set(changed)
    quiet = [i for i in rng.sample(range(count), max(1, count * 2 // 100)) if i not in changed_set]
    for i in quiet:
        kind = change(rng, after[i], weighted(rng, NOISE_CHANGES))
        tally["noise:" + kind] = tally.get("noise:" + kind, 0) + 1
    gone = set(rng.sample(range(count), max(1, count * 3 // 1000)))
    new = [make_host(rng, count + k) for k in range(max(1, count * 3 // 1000))]
    for h in new:
        add_host_script(rng, h)
        h["entry"] = 0
    tally["gone"], tally["new"] = len(gone), len(new)

    # Second entries: BEFORE's; AFTER's mostly the same hosts, a tenth gone, some new, and
    # a tenth whose entries change places (AFTER's first sees what BEFORE's second saw).
    before_dups = [second_entry(rng, hosts[i], dup_how[i]) for i in dups]
    after_dups = []
    for i in dups:
        if i in gone:
            continue
        roll = rng.random()
        if roll < 0.1:
            tally["dup-gone"] = tally.get("dup-gone", 0) + 1
            continue
        if roll < 0.2 and dup_how[i][0] != "same":
            first = second_entry(rng, after[i], dup_how[i])
            first["entry"] = 0
            after[i] = first
            how = dup_variant(rng, after[i])
            while how[0] == "same":
                how = dup_variant(rng, after[i])
            after_dups.append(second_entry(rng, after[i], how))
            tally["dup-swapped"] = tally.get("dup-swapped", 0) + 1
            continue
        after_dups.append(second_entry(rng, after[i], dup_how[i]))
    for i in sorted(rng.sample([i for i in range(count) if i not in dup_how and i not in gone], max(1, count // 1250))):
        after_dups.append(second_entry(rng, after[i], dup_variant(rng, after[i])))
        tally["dup-new"] = tally.get("dup-new", 0) + 1
    after_dups.sort(key=lambda h: h["i"])

    before_entries = hosts + before_dups
    after_entries = [h for h in after if h["i"] not in gone] + new + after_dups
    write(args.before, before_entries, 1795400000, args.seed, 1, args.frozen)
    write(args.after, after_entries, 1795486400, args.seed, 2, args.frozen)
    print("rich shape: %d + %d entries in BEFORE, %d + %d in AFTER; changes: %s" % (
        len(hosts), len(before_dups), len(after_entries) - len(after_dups), len(after_dups),
        ", ".join("%s %d" % kv for kv in sorted(tally.items()))), file=sys.stderr)


if __name__ == "__main__":
    main()
