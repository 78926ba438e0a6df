//! A bundle assembled from what a collector's evidence export sends, in the order it sends it:
//! the range, tree heads, consistency proofs, leaves and the rule files. The one place the
//! bundle's files are made; `veuctl evidence export` only streams items into it.
//!
//! Invariant: nothing is checked here that `verify` checks (signatures, proofs, inclusion);
//! only what makes the files well formed is: every head carries a decodable signature by a
//! well-formed key, every file is a known one in UTF-8, and the range's end head was sent.

use proto_evidence::Envelope;
use proto_seal::{InvalidEnvelope, PublicKey};

use crate::format::{
    Bundle, CHECKPOINT, Consistency, FORMAT, Head, LANDMARKS, Leaf, Manifest, SITES,
};
use crate::hex::to_hex;

/// Why an export cannot become a bundle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssemblyError {
    /// A tree head came without its signature.
    #[error("tree head {0} has no signature")]
    UnsignedHead(u64),
    /// A tree head's signature envelope or log key is malformed.
    #[error("tree head {tree_size}: {error}")]
    MalformedHead { tree_size: u64, error: String },
    /// A file is not UTF-8.
    #[error("{0} is not UTF-8")]
    NotText(String),
    /// A file the bundle format does not have.
    #[error("unexpected file {0:?} in the export")]
    UnknownFile(String),
    /// No range was sent.
    #[error("the collector sent no export summary")]
    NoRange,
    /// The range's end head is missing.
    #[error("the collector sent no head of the range's end")]
    NoEndHead,
    /// No head at all.
    #[error("the collector sent no tree head")]
    NoHead,
    /// A rule file is missing.
    #[error("the collector sent no {0}")]
    NoFile(&'static str),
}

/// A bundle being assembled.
#[derive(Debug, Clone)]
pub struct Assembly {
    from_ms: i64,
    to_ms: i64,
    range: Option<(u64, u64)>,
    log_key_id: Option<String>,
    heads: Vec<Head>,
    consistency: Vec<Consistency>,
    leaves: Vec<Leaf>,
    policy: Option<String>,
    catalogue: Option<String>,
    checkpoint: Option<String>,
    landmarks: Option<String>,
    sites: Option<String>,
}

impl Assembly {
    /// An empty bundle of receipt times `[from_ms, to_ms)`.
    pub fn new(from_ms: i64, to_ms: i64) -> Self {
        Self {
            from_ms,
            to_ms,
            range: None,
            log_key_id: None,
            heads: Vec::new(),
            consistency: Vec::new(),
            leaves: Vec::new(),
            policy: None,
            catalogue: None,
            checkpoint: None,
            landmarks: None,
            sites: None,
        }
    }

    /// The tree heads the export runs between.
    pub fn range(&mut self, start_tree_size: u64, end_tree_size: u64) {
        self.range = Some((start_tree_size, end_tree_size));
    }

    /// A signed tree head, kept with its signed envelope.
    pub fn head(
        &mut self,
        tree_size: u64,
        root: &[u8],
        timestamp_ms: i64,
        signature: Option<&Result<Envelope, InvalidEnvelope>>,
        log_public_key: &[u8],
    ) -> Result<(), AssemblyError> {
        let malformed = |error: String| AssemblyError::MalformedHead { tree_size, error };
        let envelope = signature
            .ok_or(AssemblyError::UnsignedHead(tree_size))?
            .as_ref()
            .map_err(|e| malformed(e.to_string()))?;
        let key = PublicKey::from_slice(log_public_key).map_err(|e| malformed(e.to_string()))?;
        self.log_key_id = Some(to_hex(key.key_id().0.as_bytes()));
        self.heads.push(Head {
            tree_size,
            root: to_hex(root),
            timestamp_ms,
            envelope: to_hex(&proto_seal::encode_envelope(envelope)),
        });
        Ok(())
    }

    /// A consistency proof between two of the heads.
    pub fn consistency(&mut self, first_tree_size: u64, second_tree_size: u64, proof: &[Vec<u8>]) {
        self.consistency.push(Consistency {
            first_tree_size,
            second_tree_size,
            proof: proof.iter().map(|h| to_hex(h)).collect(),
        });
    }

    /// A leaf with its audit path; the number of leaves so far. An empty `envelope` is none.
    pub fn leaf(
        &mut self,
        log_index: u64,
        entry: &[u8],
        envelope: &[u8],
        tree_size: u64,
        audit_path: &[Vec<u8>],
    ) -> usize {
        self.leaves.push(Leaf {
            log_index,
            entry: to_hex(entry),
            envelope: (!envelope.is_empty()).then(|| to_hex(envelope)),
            tree_size,
            path: audit_path.iter().map(|h| to_hex(h)).collect(),
        });
        self.leaves.len()
    }

    /// One of the bundle's rule files, by its file name.
    pub fn file(&mut self, name: &str, content: Vec<u8>) -> Result<(), AssemblyError> {
        let text = String::from_utf8(content).map_err(|_| AssemblyError::NotText(name.into()))?;
        let slot = match name {
            "policy.toml" => &mut self.policy,
            "catalogue.toml" => &mut self.catalogue,
            CHECKPOINT => &mut self.checkpoint,
            LANDMARKS => &mut self.landmarks,
            SITES => &mut self.sites,
            other => return Err(AssemblyError::UnknownFile(other.into())),
        };
        *slot = Some(text);
        Ok(())
    }

    /// The bundle. It claims no more time than its end head proves complete: when the range
    /// ends after the collector's newest head, it ends at that head.
    pub fn finish(self) -> Result<Bundle, AssemblyError> {
        let (start_tree_size, end_tree_size) = self.range.ok_or(AssemblyError::NoRange)?;
        let end_head = self
            .heads
            .iter()
            .find(|h| h.tree_size == end_tree_size)
            .ok_or(AssemblyError::NoEndHead)?;
        Ok(Bundle {
            manifest: Manifest {
                format: FORMAT.into(),
                from_ms: self.from_ms.min(end_head.timestamp_ms),
                to_ms: self.to_ms.min(end_head.timestamp_ms),
                start_tree_size,
                end_tree_size,
                leaves: self.leaves.len() as u64,
                log_key_id: self.log_key_id.ok_or(AssemblyError::NoHead)?,
            },
            heads: self.heads,
            consistency: self.consistency,
            leaves: self.leaves,
            policy_toml: self.policy.ok_or(AssemblyError::NoFile("policy"))?,
            catalogue_toml: self.catalogue.ok_or(AssemblyError::NoFile("catalogue"))?,
            checkpoint: self.checkpoint,
            landmarks_toml: self.landmarks,
            sites_toml: self.sites,
        })
    }
}

#[cfg(test)]
mod tests {
    use proto_evidence::{TREE_HEAD_CONTEXT, TreeHead};
    use proto_seal::Ed25519Signer;

    use super::*;

    fn signed(key: &Ed25519Signer, tree_size: u64, at: i64) -> Result<Envelope, InvalidEnvelope> {
        let head = TreeHead {
            tree_size,
            root: [tree_size as u8; 32],
            timestamp_ms: at,
        };
        Ok(key.sign(TREE_HEAD_CONTEXT, head.encode()))
    }

    #[test]
    fn an_export_becomes_a_bundle_that_claims_no_time_past_its_end_head() {
        let key = Ed25519Signer::from_seed(&[3; 32]).unwrap();
        let public = key.public_key();
        let mut assembly = Assembly::new(1_000, 9_000);
        assembly.range(0, 2);
        assembly
            .head(
                2,
                &[2; 32],
                5_000,
                Some(&signed(&key, 2, 5_000)),
                public.as_bytes(),
            )
            .unwrap();
        assert_eq!(assembly.leaf(0, b"a", b"", 2, &[vec![1; 32]]), 1);
        assert_eq!(assembly.leaf(1, b"b", b"env", 2, &[vec![2; 32]]), 2);
        assembly.file("policy.toml", b"id = 'p'".to_vec()).unwrap();
        assembly.file("catalogue.toml", b"".to_vec()).unwrap();
        let bundle = assembly.finish().unwrap();
        assert_eq!(
            bundle.manifest.to_ms, 5_000,
            "the end head was signed at 5 s"
        );
        assert_eq!(bundle.manifest.from_ms, 1_000);
        assert_eq!(bundle.manifest.leaves, 2);
        assert_eq!(bundle.leaves[0].envelope, None);
        assert_eq!(bundle.leaves[1].envelope.as_deref(), Some("656e76"));
        assert_eq!(
            bundle.manifest.log_key_id,
            to_hex(public.key_id().0.as_bytes())
        );
    }

    #[test]
    fn what_cannot_make_a_bundle_is_named() {
        let key = Ed25519Signer::from_seed(&[3; 32]).unwrap();
        let mut assembly = Assembly::new(0, 10);
        assert_eq!(
            assembly.head(4, &[0; 32], 1, None, key.public_key().as_bytes()),
            Err(AssemblyError::UnsignedHead(4))
        );
        assert!(matches!(
            assembly.head(4, &[0; 32], 1, Some(&signed(&key, 4, 1)), &[1, 2, 3]),
            Err(AssemblyError::MalformedHead { tree_size: 4, .. })
        ));
        assert_eq!(
            assembly.file("secrets.txt", Vec::new()),
            Err(AssemblyError::UnknownFile("secrets.txt".into()))
        );
        assert_eq!(
            assembly.file("policy.toml", vec![0xff]),
            Err(AssemblyError::NotText("policy.toml".into()))
        );
        assert_eq!(
            assembly.clone().finish().unwrap_err(),
            AssemblyError::NoRange
        );
        assembly.range(0, 4);
        assert_eq!(assembly.finish().unwrap_err(), AssemblyError::NoEndHead);
    }
}
