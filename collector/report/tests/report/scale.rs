//! A month of 10,000 hosts and about 100,000 changes.

use collector_report::{HostChange, build};

use crate::harness::*;

/// Country, share of hosts in thousandths: mostly Tier 1, a spread of Tier 2, none in Tier 3.
const COUNTRIES: [(&str, u64); 12] = [
    ("US", 560),
    ("DE", 80),
    ("JP", 60),
    ("GB", 50),
    ("FR", 40),
    ("MY", 40),
    ("SG", 40),
    ("IN", 40),
    ("AE", 30),
    ("BR", 20),
    ("MX", 20),
    ("SA", 20),
];

/// A small deterministic generator, so the test needs no randomness.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound
    }
}

fn country(rng: &mut Lcg) -> &'static str {
    let mut pick = rng.next(1000);
    for (country, weight) in COUNTRIES {
        if pick < weight {
            return country;
        }
        pick -= weight;
    }
    "US"
}

#[test]
fn ten_thousand_hosts_and_a_hundred_thousand_changes() {
    let mut rng = Lcg(7);
    let mut changes: Vec<HostChange> = Vec::with_capacity(100_000);
    let hosts: Vec<(String, &str)> = (0..10_000)
        .map(|i| (format!("host-{i:05}"), country(&mut rng)))
        .collect();
    for (i, (host, country)) in hosts.iter().enumerate() {
        let at_ms = start() - DAY_MS + i64::try_from(i).unwrap() * 1000;
        changes.push(attest(at_ms, host, country, 8 * 15_840));
    }
    let month_ms = u64::try_from(month().end_ms() - start()).unwrap();
    let mut in_month: Vec<HostChange> = (0..90_000)
        .map(|_| {
            let at_ms = start() + i64::try_from(rng.next(month_ms)).unwrap();
            let (host, home) = &hosts[usize::try_from(rng.next(10_000)).unwrap()];
            match rng.next(100) {
                0 => decommission(at_ms, host, home),
                1..=3 => attest(at_ms, host, country(&mut rng), 8 * 15_840),
                _ => attest(at_ms, host, home, rng.next(9) * 15_840),
            }
        })
        .collect();
    in_month.sort_by_key(|c| c.at_ms);
    changes.extend(in_month);
    assert_eq!(changes.len(), 100_000);

    let report = build(&input(us_policy(), changes)).unwrap();
    assert_eq!(report.daily.len(), 30);
    assert!(report.series.tier1.len() <= 2000);
    assert!(
        report.series.tier1.len() > 1000,
        "{}",
        report.series.tier1.len()
    );
    assert!(report.series.tier2.values().all(|s| s.len() <= 2000));
    for line in &report.inventory_changes {
        assert_eq!(
            line.hosts_end,
            line.hosts_start + line.hosts_added - line.hosts_removed,
            "{line:?}"
        );
    }
    let hosts_end: u64 = report.inventory_changes.iter().map(|c| c.hosts_end).sum();
    assert!(hosts_end > 9_000 && hosts_end <= 10_000, "{hosts_end}");
    assert!(report.to_json().len() < 8_000_000);
    assert!(report.to_html().len() < 4_000_000);
}
