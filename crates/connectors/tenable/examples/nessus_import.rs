//! Import speed and memory of the streaming `.nessus` v2 reader.
//!
//! Writes a `.nessus` file with `FINDINGS` findings (default 100,000: 1,000 hosts with 100
//! items each, CVEs, CVSS and a plugin output, as Nessus writes them) into a temporary
//! directory, reads it back with [`NessusReader`] and prints findings per second, the file
//! size, and the process's peak resident memory before and after the import (Linux
//! `VmHWM`), so memory can be seen not to grow with the file.
//!
//! ```text
//! cargo run --release -p vowguard-tenable --example nessus_import [FINDINGS]
//! ```

#![allow(clippy::print_stdout)] // a benchmark's report is its output

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::time::Instant;

use vowguard_tenable::{NessusOptions, NessusReader};

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let findings: usize = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => 100_000,
    };
    let per_host = 100;
    let hosts = findings.div_ceil(per_host);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("scan.nessus");
    let mut out = BufWriter::new(File::create(&path)?);
    writeln!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<NessusClientData_v2>\n<Report name=\"bench\">"
    )?;
    let mut written = 0;
    for h in 0..hosts {
        let ip = format!("10.{}.{}.{}", (h >> 16) & 255, (h >> 8) & 255, h & 255);
        writeln!(
            out,
            "<ReportHost name=\"{ip}\"><HostProperties><tag name=\"host-ip\">{ip}</tag>\
             <tag name=\"host-fqdn\">host{h}.venue.example</tag>\
             <tag name=\"HOST_END_TIMESTAMP\">1723716754</tag></HostProperties>"
        )?;
        for i in 0..per_host {
            if written == findings {
                break;
            }
            written += 1;
            let port = [0, 22, 80, 443, 5432][i % 5];
            writeln!(
                out,
                "<ReportItem port=\"{port}\" svc_name=\"www\" protocol=\"tcp\" severity=\"{sev}\" \
                 pluginID=\"{plugin}\" pluginName=\"Check {plugin} &amp; friends\" pluginFamily=\"Web\">\
                 <cve>CVE-2024-{cve:04}</cve><cve>CVE-2023-{cve:04}</cve>\
                 <cvss3_base_score>{score}.5</cvss3_base_score>\
                 <cvss3_vector>CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H</cvss3_vector>\
                 <plugin_output><![CDATA[The remote host answered: Server: nginx/1.18.0 ({i})]]></plugin_output>\
                 <risk_factor>High</risk_factor></ReportItem>",
                sev = 1 + i % 4,
                plugin = 100_000 + i,
                cve = 1000 + i,
                score = 4 + i % 6,
            )?;
        }
        writeln!(out, "</ReportHost>")?;
    }
    writeln!(out, "</Report>\n</NessusClientData_v2>")?;
    out.flush()?;
    drop(out);
    let bytes = std::fs::metadata(&path)?.len();

    let before = peak_rss_kib();
    let started = Instant::now();
    let mut reader = NessusReader::new(
        BufReader::new(File::open(&path)?),
        "scan.nessus",
        "nessus",
        NessusOptions::default(),
    );
    let mut read = 0u64;
    let mut cves = 0usize;
    while let Some(finding) = reader.next_finding()? {
        read += 1;
        cves += finding.cves.len();
    }
    let elapsed = started.elapsed();
    let after = peak_rss_kib();
    println!(
        "nessus_import: {read} findings ({cves} CVE refs) from {:.1} MB in {:.3} s: {:.0} findings/s; \
         peak RSS before import {} KiB, after {} KiB",
        bytes as f64 / 1e6,
        elapsed.as_secs_f64(),
        read as f64 / elapsed.as_secs_f64(),
        before.map_or("?".into(), |v| v.to_string()),
        after.map_or("?".into(), |v| v.to_string()),
    );
    assert_eq!(read as usize, written, "every written finding is read back");
    Ok(())
}
