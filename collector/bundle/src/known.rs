//! Heads an auditor saw earlier, read from the files they kept: a checkpoint (the collector's
//! `/checkpoint`, or a bundle's `checkpoint.txt`), the JSON of `veuctl log head --format
//! json`, one of a bundle's heads, or a bundle's whole `heads.json`. Each must carry the log
//! key's signature; the verifier then requires the bundle's log to extend it.

use proto_note::{Checkpoint, KeyName, SignatureType, SignedNote, VerifierKey};
use proto_seal::PublicKey;
use serde_json::Value;

use crate::hex::from_hex;
use crate::verify::KnownHead;

/// The signed heads in `text` (from `source`, named in errors), each verified with `log_key`.
pub fn read_known_heads(
    text: &str,
    log_key: &PublicKey,
    source: &str,
) -> Result<Vec<KnownHead>, String> {
    if !text.trim_start().starts_with(['{', '[']) {
        return checkpoint(text, log_key)
            .map(|(tree_size, root)| {
                vec![KnownHead {
                    tree_size,
                    root,
                    source: source.to_owned(),
                }]
            })
            .map_err(|e| format!("{source}: {e}"));
    }
    let value: Value = serde_json::from_str(text)
        .map_err(|e| format!("{source}: not a signed head (JSON with an \"envelope\"): {e}"))?;
    let items = match value {
        Value::Array(items) => items,
        other => vec![other],
    };
    if items.is_empty() {
        return Err(format!("{source}: holds no head"));
    }
    items
        .iter()
        .enumerate()
        .map(|(n, item)| {
            let at = if n == 0 && items.len() == 1 {
                source.to_owned()
            } else {
                format!("{source} (head {})", n + 1)
            };
            known_head(item, log_key)
                .map_err(|e| format!("{at}: {e}"))
                .map(|(tree_size, root)| KnownHead {
                    tree_size,
                    root,
                    source: at,
                })
        })
        .collect()
}

fn known_head(item: &Value, log_key: &PublicKey) -> Result<(u64, proto_merkle::Hash), String> {
    let envelope = item
        .get("envelope")
        .and_then(Value::as_str)
        .ok_or("no \"envelope\" field: keep heads from `veuctl log head --format json` (it carries the signed bytes)")?;
    let bytes = from_hex(envelope).ok_or("\"envelope\" is not hex")?;
    let envelope = proto_seal::decode_envelope(&bytes).map_err(|e| e.to_string())?;
    let head = proto_seal::open_tree_head(&envelope, log_key)
        .map_err(|e| format!("the signature does not verify with the pinned log key: {e}"))?;
    Ok((head.tree_size, head.root))
}

/// A C2SP checkpoint signed by the log key under its origin.
fn checkpoint(text: &str, log_key: &PublicKey) -> Result<(u64, proto_merkle::Hash), String> {
    let note = SignedNote::parse(text.as_bytes())
        .map_err(|e| format!("neither JSON nor a signed checkpoint: {e}"))?;
    let checkpoint = Checkpoint::parse(note.text()).map_err(|e| e.to_string())?;
    let name = KeyName::new(checkpoint.origin()).map_err(|e| e.to_string())?;
    note.verify(&[VerifierKey::new(
        name,
        SignatureType::Ed25519,
        *log_key.as_bytes(),
    )])
    .map_err(|e| format!("the checkpoint is not signed by the pinned log key: {e}"))?;
    Ok((checkpoint.size(), *checkpoint.root()))
}
