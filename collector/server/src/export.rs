//! Evidence export over the audit stream: `collector_app::export` makes the items, in an order
//! a client can write as it arrives; each is converted and sent as it is made.

use collector_app::Collector;
use collector_app::export::Item;
use collector_app::log::LogKeeper;
use proto_wire::v1;
use tokio::sync::mpsc;
use tonic::Status;

use crate::audit::head_to_wire;

type Sender = mpsc::Sender<Result<v1::EvidenceItem, Status>>;

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
    collector_app::export::run(
        collector,
        log,
        request.from_unix_ms,
        request.to_unix_ms,
        |item| send(sender, to_wire(item, log)?),
    )
    .map_err(crate::status::export)
}

/// An export's item as the wire carries it.
fn to_wire(item: Item, log: &LogKeeper) -> Result<v1::evidence_item::Item, Status> {
    use v1::evidence_item::Item as Wire;
    Ok(match item {
        Item::Summary {
            start_tree_size,
            end_tree_size,
            leaves,
        } => Wire::Summary(v1::ExportSummary {
            start_tree_size,
            end_tree_size,
            leaves,
        }),
        Item::TreeHead(head) => Wire::TreeHead(head_to_wire(&head, log)?),
        Item::Consistency {
            first_tree_size,
            second_tree_size,
            proof,
        } => Wire::Consistency(v1::ConsistencyProofResponse {
            first_tree_size,
            second_tree_size,
            proof: proof.iter().map(|h| h.to_vec()).collect(),
        }),
        Item::File { name, content } => Wire::File(v1::EvidenceFile {
            name: name.to_owned(),
            content: content.into_bytes(),
        }),
        Item::Leaf {
            record,
            tree_size,
            audit_path,
        } => Wire::Leaf(v1::LogLeaf {
            log_index: record.log_index,
            entry: record.entry,
            envelope: record.envelope.unwrap_or_default(),
            tree_size,
            audit_path: audit_path.iter().map(|h| h.to_vec()).collect(),
        }),
    })
}
