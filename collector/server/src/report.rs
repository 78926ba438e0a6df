//! The signed monthly report as the audit service answers it; `collector_app::report` builds it.

use collector_app::Collector;
use collector_app::log::LogKeeper;
use collector_app::report::build;
use proto_wire::v1;
use tonic::Status;

/// `report.json` of `month` and its detached signature by the log key.
pub(crate) fn signed(
    collector: &Collector,
    log: &LogKeeper,
    month: &str,
) -> Result<v1::ReportResponse, Status> {
    let json = build(collector, log, month)
        .map_err(crate::status::report)?
        .to_json();
    let signature = log.sign_report(json.as_bytes());
    Ok(v1::ReportResponse {
        report_json: json.into_bytes(),
        signature: signature.signature,
        key_id: signature.key_id.0.as_bytes().to_vec(),
    })
}
