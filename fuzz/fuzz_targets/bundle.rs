//! An evidence bundle as `veuctl verify` reads it: the input is the bundle's files cut at
//! `veu_fuzz::SEPARATOR` (manifest.json, heads.json, consistency.json, leaves.jsonl,
//! policy.toml, catalogue.toml, checkpoint.txt, then a report.json and a report.sig to check
//! against it, and known heads), written to a directory, read with `Bundle::read` and verified
//! with the seeds' log key. Every problem must be a finding or an error, never a panic.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use collector_bundle::{
    Bundle, ReportCheck, Requirements, read_known_heads, signature_from_text, verify,
};
use libfuzzer_sys::fuzz_target;
use veu_fuzz::{parts, public_key};

const FILES: [&str; 7] = [
    "manifest.json",
    "heads.json",
    "consistency.json",
    "leaves.jsonl",
    "policy.toml",
    "catalogue.toml",
    "checkpoint.txt",
];

fn directory() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a temporary directory").keep())
}

fuzz_target!(|data: &[u8]| {
    let [
        manifest,
        heads,
        consistency,
        leaves,
        policy,
        catalogue,
        checkpoint,
        report,
        signature,
        known,
    ] = parts::<10>(data);
    let dir = directory();
    for (name, bytes) in FILES.iter().zip([
        manifest,
        heads,
        consistency,
        leaves,
        policy,
        catalogue,
        checkpoint,
    ]) {
        let path = dir.join(name);
        if name == &"checkpoint.txt" && bytes.is_empty() {
            let _ = std::fs::remove_file(&path);
        } else {
            std::fs::write(&path, bytes).expect("the temporary directory is writable");
        }
    }
    let Ok(bundle) = Bundle::read(dir) else {
        return;
    };
    let key = public_key(2);
    let mut requires = Requirements::default();
    if let Ok(text) = std::str::from_utf8(known)
        && let Ok(heads) = read_known_heads(text, &key, "known")
    {
        requires.known_heads = heads;
    }
    let signature = std::str::from_utf8(signature)
        .ok()
        .and_then(|text| signature_from_text(text).ok());
    let check = (!report.is_empty()).then_some(ReportCheck {
        json: report,
        signature: signature.as_ref(),
    });
    let outcome = verify(&bundle, &key, &requires, check);
    let _ = outcome.passed();
});
