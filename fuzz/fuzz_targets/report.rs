//! A monthly report's JSON as veuctl receives it from a collector (`veuctl report`, before any
//! signature check) and renders it: what deserialises serialises back to a report that reads
//! the same, and its CSV and HTML renderings never panic.
#![no_main]

use collector_report::Report;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(report) = serde_json::from_slice::<Report>(data) else {
        return;
    };
    let json = report.to_json();
    let again: Report = serde_json::from_str(&json).expect("a report reads its own JSON");
    assert_eq!(again, report);
    let _ = report.to_csv();
    let _ = report.to_html();
    let _ = report.verdict_words();
});
