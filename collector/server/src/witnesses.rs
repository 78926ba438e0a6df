//! Submitting the log's checkpoints to the witnesses an auditor or regulator runs (C2SP
//! tlog-witness), and keeping their cosignatures so that evidence bundles carry them.
//!
//! A witness cosigns a checkpoint only if it extends, by a consistency proof, the last one it
//! cosigned for this log: a collector that signed two different trees cannot get both
//! cosigned, and an auditor who requires cosignatures sees only the tree the witnesses saw.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use collector_store::{StoredCosignature, StoredTreeHead};
use proto_note::{SignatureType, SignedNote, VerifierKey};

use crate::log::LogKeeper;

/// How long one submission to one witness may take, connecting included.
const SUBMIT_TIMEOUT: Duration = Duration::from_secs(10);

/// One witness the collector submits to.
#[derive(Debug, Clone)]
pub struct WitnessTarget {
    /// `http://host:port` (and the witness's path prefix, if any).
    pub url: String,
    /// The witness's cosignature key (`name+id+key`), which auditors pin too.
    pub key: VerifierKey,
}

/// The configured witnesses and the size each last cosigned, as far as this collector knows.
#[derive(Debug)]
pub struct Witnesses {
    targets: Vec<WitnessTarget>,
    /// The size each witness (by URL) last cosigned; learnt from its answers.
    sizes: Mutex<HashMap<String, u64>>,
}

/// What one submission came to, for logs and tests.
#[derive(Debug)]
pub enum Submitted {
    /// The witness cosigned; its cosignature is kept.
    Cosigned { witness: String, tree_size: u64 },
    /// The witness already holds a larger tree of this log (another replica submitted it).
    Ahead { witness: String, witness_size: u64 },
    /// The witness refused or could not be reached.
    Failed { witness: String, reason: String },
}

impl Witnesses {
    /// The witnesses in `targets` (keys checked to be cosignature keys by the caller).
    pub fn new(targets: Vec<WitnessTarget>) -> Self {
        Self {
            targets,
            sizes: Mutex::new(HashMap::new()),
        }
    }

    /// Whether any witness is configured.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Submits `head`'s checkpoint to every witness that has not cosigned it yet and keeps
    /// each new cosignature in the store. Never fails as a whole: each witness's outcome is
    /// returned (and logged).
    pub async fn submit(&self, log: &Arc<LogKeeper>, head: &StoredTreeHead) -> Vec<Submitted> {
        let mut outcomes = Vec::with_capacity(self.targets.len());
        let kept = {
            let log = Arc::clone(log);
            let size = head.tree_size;
            tokio::task::spawn_blocking(move || log.store().cosignatures(size))
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default()
        };
        for target in &self.targets {
            let name = target.key.name().as_str().to_owned();
            if kept.iter().any(|c| c.witness == name) {
                continue;
            }
            let outcome = self.submit_one(log, head, target).await;
            match &outcome {
                Submitted::Cosigned { witness, tree_size } => {
                    tracing::info!(witness, tree_size, "checkpoint cosigned by a witness");
                }
                Submitted::Ahead {
                    witness,
                    witness_size,
                } => tracing::warn!(
                    witness,
                    witness_size,
                    tree_size = head.tree_size,
                    "the witness holds a larger tree of this log than this replica's head"
                ),
                Submitted::Failed { witness, reason } => {
                    tracing::warn!(
                        witness,
                        reason,
                        tree_size = head.tree_size,
                        "witness gave no cosignature"
                    );
                }
            }
            outcomes.push(outcome);
        }
        outcomes
    }

    async fn submit_one(
        &self,
        log: &Arc<LogKeeper>,
        head: &StoredTreeHead,
        target: &WitnessTarget,
    ) -> Submitted {
        let witness = target.key.name().as_str().to_owned();
        let failed = |reason: String| Submitted::Failed {
            witness: witness.clone(),
            reason,
        };
        let note = match log.checkpoint(head) {
            Ok(note) => note,
            Err(e) => return failed(e.to_string()),
        };
        // Only the log's own signature goes to the witness.
        let Some(bare) = log_signed_only(&note, log) else {
            return failed("the checkpoint carries no log signature".into());
        };
        let mut old = self.known_size(&target.url);
        // At most twice: the witness's answer to a wrong old size names the right one.
        for _ in 0..2 {
            if old > head.tree_size {
                return Submitted::Ahead {
                    witness,
                    witness_size: old,
                };
            }
            let proof = {
                let log = Arc::clone(log);
                let new = head.tree_size;
                match tokio::task::spawn_blocking(move || log.consistency(old, new)).await {
                    Ok(Ok(proof)) => proof,
                    Ok(Err(e)) => return failed(e.to_string()),
                    Err(e) => return failed(e.to_string()),
                }
            };
            match veu_witness::add_checkpoint(&target.url, old, &proof, &bare, SUBMIT_TIMEOUT).await
            {
                Ok(lines) => {
                    self.remember(&target.url, head.tree_size);
                    return self.keep(log, head, target, &note, lines).await;
                }
                Err(error) => match error.witness_size() {
                    Some(size) if size != old => {
                        self.remember(&target.url, size);
                        old = size;
                    }
                    _ => return failed(error.to_string()),
                },
            }
        }
        failed("the witness kept answering with another size".into())
    }

    /// Checks each returned line against the witness's key and keeps the good one.
    async fn keep(
        &self,
        log: &Arc<LogKeeper>,
        head: &StoredTreeHead,
        target: &WitnessTarget,
        note: &SignedNote,
        lines: Vec<proto_note::NoteSignature>,
    ) -> Submitted {
        let witness = target.key.name().as_str().to_owned();
        let mut cosigned = note.clone();
        for line in lines {
            let _ = cosigned.add_signature(line);
        }
        let verified = match cosigned.verify(std::slice::from_ref(&target.key)) {
            Ok(verified) => verified,
            Err(e) => {
                return Submitted::Failed {
                    witness,
                    reason: format!("its cosignature does not verify with its pinned key: {e}"),
                };
            }
        };
        let Some(signature) = verified.verified().first() else {
            return Submitted::Failed {
                witness,
                reason: "it returned no cosignature by its key".into(),
            };
        };
        let stored = StoredCosignature {
            tree_size: head.tree_size,
            witness: witness.clone(),
            line: signature.signature().to_line().trim_end().to_owned(),
            received_at_ms: log.now_ms(),
        };
        let log = Arc::clone(log);
        match tokio::task::spawn_blocking(move || log.store().put_cosignature(&stored)).await {
            Ok(Ok(())) => Submitted::Cosigned {
                witness,
                tree_size: head.tree_size,
            },
            Ok(Err(e)) => Submitted::Failed {
                witness,
                reason: format!("cannot keep its cosignature: {e}"),
            },
            Err(e) => Submitted::Failed {
                witness,
                reason: e.to_string(),
            },
        }
    }

    fn known_size(&self, url: &str) -> u64 {
        self.sizes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(url)
            .copied()
            .unwrap_or(0)
    }

    fn remember(&self, url: &str, size: u64) {
        self.sizes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(url.to_owned(), size);
    }
}

/// The note with only the log key's signature, encoded.
fn log_signed_only(note: &SignedNote, log: &LogKeeper) -> Option<String> {
    let verified = note.verify(std::slice::from_ref(log.verifier_key())).ok()?;
    let line = verified.verified().first()?.signature().to_line();
    Some(format!("{}\n{line}", note.text()))
}

/// Whether `key` is a witness's cosignature key.
pub fn is_cosignature_key(key: &VerifierKey) -> bool {
    key.signature_type() == SignatureType::CosignatureV1
}
