//! Parser throughput: seclab's streaming nmap reader (built on its own byte-level pass,
//! `scan::xml`) against a bare quick-xml event loop over the same file, in one run; beside
//! them, the well-formedness check `scan diff` makes of the hosts it does not parse (the same
//! pass), on one thread. `bench/scans.sh` runs it on a generated
//! 65,536-host scan:
//!
//!     SECLAB_BENCH_SCAN=before.xml cargo bench --bench parse

use std::fs::File;
use std::io::BufReader;
use std::time::Instant;

use quick_xml::Reader;
use quick_xml::events::Event;
use seclab::scan::chunks;
use seclab::scan::parse::{ScanReader, check_element};

/// Rounds of each; the two loops alternate so that machine noise hits both alike.
const ROUNDS: usize = 9;

/// The allocator the seclab binary ships with, so the parser is measured as it runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn bare_loop(path: &str) -> usize {
    let mut reader = Reader::from_reader(BufReader::with_capacity(64 * 1024, File::open(path).unwrap()));
    let mut buf = Vec::new();
    let mut elements = 0;
    loop {
        match reader.read_event_into(&mut buf).unwrap() {
            Event::Start(_) | Event::Empty(_) => elements += 1,
            Event::Eof => return elements,
            _ => {}
        }
        buf.clear();
    }
}

fn seclab_reader(path: &str) -> usize {
    let mut reader = ScanReader::new(BufReader::with_capacity(64 * 1024, File::open(path).unwrap())).unwrap();
    let mut hosts = 0;
    while reader.next_host().unwrap().is_some() {
        hosts += 1;
    }
    reader.finish().unwrap();
    hosts
}

/// Every host element of the file checked (in memory, as `scan diff` checks them).
fn host_check(bytes: &[u8]) -> usize {
    let split = chunks::split(bytes).unwrap();
    for host in &split.hosts {
        check_element(host, 0).unwrap();
    }
    split.hosts.len()
}

/// Seconds one run takes, and what it counted.
fn timed(run: impl FnOnce() -> usize) -> (f64, usize) {
    let start = Instant::now();
    let count = std::hint::black_box(run());
    (start.elapsed().as_secs_f64(), count)
}

fn main() {
    let Ok(path) = std::env::var("SECLAB_BENCH_SCAN") else {
        eprintln!("set SECLAB_BENCH_SCAN to an nmap XML file (bench/scans.sh does)");
        return;
    };
    let megabytes = std::fs::metadata(&path).unwrap().len() as f64 / 1e6;
    let (mut bare, mut seclab, mut elements, mut hosts) = (f64::MAX, f64::MAX, 0, 0);
    let bytes = std::fs::read(&path).unwrap();
    let mut check = f64::MAX;
    for _ in 0..ROUNDS {
        check = check.min(timed(|| host_check(&bytes)).0);
        let (seconds, count) = timed(|| bare_loop(&path));
        (bare, elements) = (bare.min(seconds), count);
        let (seconds, count) = timed(|| seclab_reader(&path));
        (seclab, hosts) = (seclab.min(seconds), count);
    }
    println!("file: {path} ({megabytes:.1} MB, {hosts} hosts, {elements} elements)");
    println!("bare quick-xml event loop: {:.0} MB/s", megabytes / bare);
    println!("seclab ScanReader:         {:.0} MB/s", megabytes / seclab);
    println!("ratio (seclab / bare):     {:.2} (target: at least 0.50)", bare / seclab);
    println!("host check (scan diff):    {:.0} MB/s, one thread, the file in memory", megabytes / check);
}
