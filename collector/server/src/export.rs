//! Evidence export: everything an offline verifier needs for a range of receipt times, streamed
//! in an order a client can write as it arrives (summary, heads, consistency proof, files, then
//! leaves with their inclusion proofs in the end head).

use collector_store::LogRecord;
use proto_wire::v1;
use tokio::sync::mpsc;
use tonic::Status;

use crate::audit::{export_page, head_to_wire};
use collector_app::ingest::Collector;
use collector_app::log::LogKeeper;

type Sender = mpsc::Sender<Result<v1::EvidenceItem, Status>>;

use crate::status::{log as log_status, store as store_status};

fn send(sender: &Sender, item: v1::evidence_item::Item) -> Result<(), Status> {
    sender
        .blocking_send(Ok(v1::EvidenceItem { item: Some(item) }))
        // The client went away: stop quietly.
        .map_err(|_| Status::cancelled("the client stopped reading"))
}

/// Runs one export; the caller sends a returned error to the client.
pub(crate) fn run(
    collector: &Collector,
    log: &LogKeeper,
    request: &v1::ExportEvidenceRequest,
    sender: &Sender,
) -> Result<(), Status> {
    let store = collector.store.as_ref();
    let start = store
        .tree_head_before(request.from_unix_ms)
        .map_err(store_status)?;
    let end = log
        .head_covering(request.to_unix_ms, true)
        .map_err(log_status)?;
    let start_size = start.as_ref().map_or(0, |h| h.tree_size);
    let end_size = end.tree_size;

    send(
        sender,
        v1::evidence_item::Item::Summary(v1::ExportSummary {
            start_tree_size: start_size,
            end_tree_size: end_size,
            // Every leaf from the log's first, so that an auditor replays the books with the
            // collector's own ledger and gets exactly its state at the range's start (GPU
            // ownership and chains included), not an approximation of it.
            leaves: end_size,
        }),
    )?;
    if let Some(start) = &start {
        send(
            sender,
            v1::evidence_item::Item::TreeHead(head_to_wire(start, log)?),
        )?;
    }
    send(
        sender,
        v1::evidence_item::Item::TreeHead(head_to_wire(&end, log)?),
    )?;
    if start_size > 0 {
        let proof = log.consistency(start_size, end_size).map_err(log_status)?;
        send(
            sender,
            v1::evidence_item::Item::Consistency(v1::ConsistencyProofResponse {
                first_tree_size: start_size,
                second_tree_size: end_size,
                proof: proof.iter().map(|h| h.to_vec()).collect(),
            }),
        )?;
    }
    // The end head as a checkpoint, with the cosignatures witnesses gave it so far.
    let checkpoint = log.checkpoint(&end).map_err(log_status)?.to_string();
    let landmarks = collector.landmarks().to_toml();
    let sites = collector.rules.sites.to_toml();
    for (name, content) in [
        ("policy.toml", &collector.rules.policy_toml),
        ("catalogue.toml", &collector.rules.catalogue_toml),
        ("checkpoint.txt", &checkpoint),
        ("landmarks.toml", &landmarks),
        ("sites.toml", &sites),
    ] {
        send(
            sender,
            v1::evidence_item::Item::File(v1::EvidenceFile {
                name: name.to_owned(),
                content: content.as_bytes().to_vec(),
            }),
        )?;
    }

    let mut next = 0;
    while next < end_size {
        let page = store
            .log_records(next, export_page())
            .map_err(store_status)?;
        if page.is_empty() {
            return Err(Status::data_loss(format!("leaf {next} is missing")));
        }
        for record in page {
            if record.log_index >= end_size {
                return Ok(());
            }
            next = record.log_index + 1;
            send_leaf(sender, log, record, end_size)?;
        }
    }
    Ok(())
}

fn send_leaf(
    sender: &Sender,
    log: &LogKeeper,
    record: LogRecord,
    tree_size: u64,
) -> Result<(), Status> {
    let path = log
        .inclusion(record.log_index, tree_size)
        .map_err(log_status)?;
    send(
        sender,
        v1::evidence_item::Item::Leaf(v1::LogLeaf {
            log_index: record.log_index,
            entry: record.entry,
            envelope: record.envelope.unwrap_or_default(),
            tree_size,
            audit_path: path.iter().map(|h| h.to_vec()).collect(),
        }),
    )
}
