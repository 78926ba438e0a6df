//! The collector's log leaves and signed tree heads (proto-evidence): what decodes encodes back
//! to the same bytes, so a leaf has exactly one encoding; a tree head signed by the seeds' log
//! key opens to what it decodes to.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto_evidence::{LogEntry, TREE_HEAD_CONTEXT, TreeHead};
use veu_fuzz::signer;

fuzz_target!(|data: &[u8]| {
    if let Ok(entry) = LogEntry::decode(data) {
        assert_eq!(entry.encode().as_deref(), Ok(data));
    }
    if let Ok(head) = TreeHead::decode(data) {
        assert_eq!(head.encode(), data);
    }
    let log = signer(2);
    let envelope = log.sign(TREE_HEAD_CONTEXT, data.to_vec());
    assert_eq!(
        proto_seal::open_tree_head(&envelope, &log.public_key()).ok(),
        TreeHead::decode(data).ok()
    );
});
