//! Input a report cannot be built from: each error names the item, the host and the instant.

use collector_report::{GapEvent, Month, MonthError, ReportError, StaleSpan, build};

use crate::harness::*;

#[test]
fn changes_out_of_order_are_refused() {
    let changes = vec![
        attest(at(3, 0, 0), "us1", "US", 100),
        attest(at(2, 0, 0), "us2", "US", 100),
    ];
    let error = build(&input(us_policy(), changes)).unwrap_err();
    assert_eq!(
        error,
        ReportError::ChangeOutOfOrder {
            index: 1,
            host_id: "us2".into(),
            at_ms: at(2, 0, 0),
            previous_ms: at(3, 0, 0),
        }
    );
    assert!(
        error.to_string().starts_with("changes[1] (host \"us2\")"),
        "{error}"
    );
}

#[test]
fn changes_at_or_after_the_month_end_are_refused() {
    let end = month().end_ms();
    let error = build(&input(us_policy(), vec![attest(end, "us1", "US", 1)])).unwrap_err();
    assert_eq!(
        error,
        ReportError::ChangeAfterMonth {
            index: 0,
            host_id: "us1".into(),
            at_ms: end,
            end_ms: end,
        }
    );
}

#[test]
fn tpp_beyond_64_bits_is_refused() {
    let changes = vec![
        attest(at(1, 1, 0), "us1", "US", u64::MAX / 2 + 1),
        attest(at(1, 2, 0), "my1", "MY", u64::MAX / 2 + 1),
    ];
    let error = build(&input(us_policy(), changes)).unwrap_err();
    assert_eq!(
        error,
        ReportError::TppOverflow {
            index: 1,
            host_id: "my1".into(),
            at_ms: at(1, 2, 0),
            country: code("MY"),
        }
    );
}

#[test]
fn a_month_out_of_range_is_refused() {
    let mut input = input(us_policy(), Vec::new());
    input.month = Month {
        year: 2026,
        month: 13,
    };
    assert_eq!(
        build(&input).unwrap_err(),
        ReportError::Month(MonthError::OutOfRange {
            year: 2026,
            month: 13
        })
    );
}

#[test]
fn a_silence_ending_before_it_starts_is_refused() {
    let mut input = input(us_policy(), Vec::new());
    input.stale = vec![StaleSpan {
        host_id: "us1".into(),
        country: code("US"),
        tpp: 1,
        from_ms: at(5, 0, 0),
        to_ms: Some(at(4, 0, 0)),
    }];
    assert!(matches!(
        build(&input).unwrap_err(),
        ReportError::StaleSpanReversed { index: 0, .. }
    ));
}

#[test]
fn gaps_outside_the_month_are_refused() {
    let mut input = input(us_policy(), Vec::new());
    input.gaps = vec![
        GapEvent {
            at_ms: at(5, 0, 0),
            host_id: "a".into(),
            missing: 1,
        },
        GapEvent {
            at_ms: month().end_ms(),
            host_id: "b".into(),
            missing: 1,
        },
    ];
    let error = build(&input).unwrap_err();
    assert!(
        matches!(&error, ReportError::EventOutsideMonth { list: "gaps", index: 1, host_id, .. } if host_id == "b"),
        "{error}"
    );
}

#[test]
fn rejection_counts_beyond_64_bits_are_refused() {
    let mut input = input(us_policy(), Vec::new());
    input.rejections = vec![("nonce".into(), u64::MAX), ("nonce".into(), 1)];
    assert_eq!(
        build(&input).unwrap_err(),
        ReportError::RejectionCountOverflow {
            reason: "nonce".into()
        }
    );
}
