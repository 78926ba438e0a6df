//! The sample report's page in a real browser engine: headless Chromium (Debian's `chromium`)
//! takes screenshots of its top, its charts and its tables, and prints it to PDF from the same
//! HTML. Ignored by default because it needs the browser; CI installs it and runs this with
//! `cargo test --workspace -- --ignored chromium`, so a missing browser fails there.
//!
//! `VEU_REPORT_SCREENSHOTS=docs/report` (relative to the repository root) writes the PNG files
//! there instead of a temporary directory: that is how `docs/report/*.png` were made.

use std::path::{Path, PathBuf};
use std::process::Command;

use collector_report::HtmlOptions;

use crate::harness::*;

/// The browser's name on Debian.
const CHROMIUM: &str = "chromium";

/// 2026-12-01T09:30:00Z: when the sample was rendered.
const GENERATED_AT_MS: i64 = 1_796_117_400_000;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Width and height of a PNG, from its header.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let word = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (word(16), word(20))
}

fn chromium(profile: &Path, args: &[String]) {
    let output = Command::new(CHROMIUM)
        .args([
            "--headless",
            // CI runs as root in a container, where Chromium's sandbox cannot start.
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-extensions",
            "--force-device-scale-factor=1",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .unwrap_or_else(|error| {
            panic!("{CHROMIUM} is required for this test (apt-get install chromium): {error}")
        });
    assert!(
        output.status.success(),
        "{CHROMIUM} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
#[ignore = "needs Debian's chromium; CI runs it with -- --ignored chromium"]
fn chromium_screenshots_and_prints_the_sample_report() {
    let report = report(&signing_sample());
    let html = report.to_html_with(&HtmlOptions {
        generated_at_ms: Some(GENERATED_AT_MS),
    });
    let scratch = tempfile::tempdir().unwrap();
    let out = match std::env::var_os("VEU_REPORT_SCREENSHOTS") {
        Some(dir) => {
            let dir = repo().join(dir);
            std::fs::create_dir_all(&dir).unwrap();
            dir
        }
        None => scratch.path().to_path_buf(),
    };
    let page = scratch.path().join("report.html");
    std::fs::write(&page, &html).unwrap();
    let url = format!("file://{}", page.display());
    let profile = scratch.path().join("profile");
    // A headless screenshot shows the top of a page, so the charts and the tables are shot on
    // copies of the page that hide everything else with one added rule.
    let only = |id: &str| {
        let copy = scratch.path().join(format!("{id}.html"));
        let rule = format!("<style>body>:not(#{id}){{display:none}}</style>\n</head>");
        std::fs::write(&copy, html.replacen("</head>", &rule, 1)).unwrap();
        format!("file://{}", copy.display())
    };

    // The page's top (verdict, what it is about, the rules), its charts and its tables, at a
    // laptop's width; and the top in a narrow window, where nothing may overflow.
    let shots = [
        ("report-top.png", url.clone(), (1200, 1500)),
        ("report-charts.png", only("charts"), (1200, 1500)),
        ("report-tables.png", only("details"), (1200, 1500)),
        ("report-narrow.png", url.clone(), (600, 1100)),
    ];
    for (name, target, (width, height)) in shots {
        let path = out.join(name);
        let _ = std::fs::remove_file(&path);
        chromium(
            &profile,
            &[
                format!("--screenshot={}", path.display()),
                format!("--window-size={width},{height}"),
                target,
            ],
        );
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(png_size(&bytes), (width, height), "{name}");
        // A blank or failed page compresses to a few kilobytes; a rendered one does not.
        assert!(bytes.len() > 30_000, "{name}: only {} bytes", bytes.len());
        assert!(bytes.len() < 600_000, "{name}: {} bytes", bytes.len());
    }

    // The same HTML printed by the same engine, with the page's print styles (A4); kept out
    // of docs/ for its size.
    let pdf = scratch.path().join("report.pdf");
    chromium(
        &profile,
        &[
            format!("--print-to-pdf={}", pdf.display()),
            "--no-pdf-header-footer".to_owned(),
            url,
        ],
    );
    let bytes = std::fs::read(&pdf).unwrap();
    assert!(bytes.starts_with(b"%PDF-"), "not a PDF");
    assert!(bytes.len() > 20_000, "only {} bytes", bytes.len());
    let pages = bytes.windows(10).filter(|w| w == b"/Type /Pag").count()
        + bytes.windows(9).filter(|w| w == b"/Type/Pag").count();
    assert!(
        pages >= 3,
        "{pages} page objects: the report should print on several pages"
    );
}
