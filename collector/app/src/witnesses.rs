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
use crate::metrics::Metrics;

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
    metrics: Arc<Metrics>,
}

/// What one submission came to, for logs, metrics and tests.
#[derive(Debug)]
pub enum Submitted {
    /// The witness cosigned; its cosignature is kept, received at `received_at_ms`.
    Cosigned {
        witness: String,
        tree_size: u64,
        received_at_ms: i64,
    },
    /// The witness already holds a larger tree of this log (another replica submitted it).
    Ahead { witness: String, witness_size: u64 },
    /// The witness refused or could not be reached.
    Failed { witness: String, reason: String },
}

impl Witnesses {
    /// The witnesses in `targets` (keys checked to be cosignature keys by the caller); what
    /// they answer is recorded in `metrics`, where each has its series from now on.
    pub fn new(targets: Vec<WitnessTarget>, metrics: Arc<Metrics>) -> Self {
        for target in &targets {
            metrics.witness_configured(target.key.name().as_str());
        }
        Self {
            targets,
            sizes: Mutex::new(HashMap::new()),
            metrics,
        }
    }

    /// Whether any witness is configured.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Submits `head`'s checkpoint to every witness that has not cosigned it yet and keeps
    /// each new cosignature in the store. Never fails as a whole: each witness's outcome is
    /// returned, logged and counted; this is the one place the witness metrics are recorded.
    pub async fn submit(&self, log: &Arc<LogKeeper>, head: &StoredTreeHead) -> Vec<Submitted> {
        self.metrics.log_checkpoint(head.tree_size);
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
            if let Some(kept) = kept.iter().find(|c| c.witness == name) {
                // Cosigned already: by an earlier submission, another replica, or before a
                // restart. Not a submission, but the gauges must show it (after a restart
                // they start at 0).
                self.metrics
                    .witness_cosigned(&name, kept.tree_size, kept.received_at_ms);
                continue;
            }
            let outcome = self.submit_one(log, head, target).await;
            self.metrics.witness_submitted(&outcome);
            match &outcome {
                Submitted::Cosigned {
                    witness, tree_size, ..
                } => {
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
        let received_at_ms = log.now_ms();
        let stored = StoredCosignature {
            tree_size: head.tree_size,
            witness: witness.clone(),
            line: signature.signature().to_line().trim_end().to_owned(),
            received_at_ms,
        };
        let log = Arc::clone(log);
        match tokio::task::spawn_blocking(move || log.store().put_cosignature(&stored)).await {
            Ok(Ok(())) => Submitted::Cosigned {
                witness,
                tree_size: head.tree_size,
                received_at_ms,
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use collector_store::{AgentRecord, AttestationStore};
    use collector_store_sqlite::{SqliteOptions, SqliteStore};
    use proto_note::{Cosigner, KeyName, SignerKey};
    use proto_seal::Ed25519Signer;
    use tokio_util::sync::CancellationToken;
    use veu_witness::state::StateDir;
    use veu_witness::{Limits, Witness, WitnessedLog};

    use super::*;

    const ORIGIN: &str = "collector.test/veu-attest";
    const WITNESS: &str = "witness.test";
    /// 2026-01-01T00:00:00.250Z: the collector's clock.
    const NOW_MS: i64 = 1_767_225_600_250;

    fn clock() -> i64 {
        NOW_MS
    }

    fn enrol(store: &dyn AttestationStore, n: u8) {
        store
            .put_agent(&AgentRecord {
                key_id: proto_evidence::KeyId(proto_evidence::Sha256::from_bytes([n; 32])),
                public_key: [n; 32],
                host_id: proto_evidence::HostId(format!("gpu-{n}")),
                site_id: proto_evidence::SiteId("us-va-1".into()),
                country: "US".into(),
                identity: format!("urn:veu:agent:gpu-{n}"),
                enrolled_at_ms: NOW_MS - 1_000,
                revoked_at_ms: None,
            })
            .unwrap();
    }

    /// A witness of `log` served in this runtime; its URL and the key that checks it.
    async fn witness(dir: &Path, log: &LogKeeper, shutdown: &CancellationToken) -> WitnessTarget {
        let key = SignerKey::from_seed(
            KeyName::new(WITNESS).unwrap(),
            SignatureType::CosignatureV1,
            [7; 32],
        )
        .unwrap();
        let witness = Witness::open(
            Cosigner::from_signer_key(&key).unwrap(),
            vec![WitnessedLog {
                origin: ORIGIN.into(),
                keys: vec![log.verifier_key().clone()],
            }],
            StateDir::open(dir).unwrap(),
        )
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(veu_witness::server::serve(
            listener,
            Arc::new(witness),
            Limits::default(),
            shutdown.clone(),
        ));
        WitnessTarget {
            url,
            key: key.verifier_key(),
        }
    }

    /// A witness nobody answers for: a port that was free a moment ago.
    fn unreachable() -> WitnessTarget {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let key = SignerKey::from_seed(
            KeyName::new("down.test").unwrap(),
            SignatureType::CosignatureV1,
            [8; 32],
        )
        .unwrap();
        WitnessTarget {
            url: format!("http://127.0.0.1:{port}"),
            key: key.verifier_key(),
        }
    }

    fn has(metrics: &Metrics, line: &str) {
        let text = metrics.render();
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }

    fn outcomes(submitted: &[Submitted]) -> Vec<String> {
        submitted
            .iter()
            .map(|s| match s {
                Submitted::Cosigned {
                    witness, tree_size, ..
                } => format!("{witness} cosigned {tree_size}"),
                Submitted::Ahead {
                    witness,
                    witness_size,
                } => format!("{witness} ahead {witness_size}"),
                Submitted::Failed { witness, .. } => format!("{witness} failed"),
            })
            .collect()
    }

    #[tokio::test]
    async fn each_outcome_is_recorded_where_it_is_produced_and_kept_cosignatures_survive_a_restart()
    {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn AttestationStore> = Arc::new(
            SqliteStore::open(&dir.path().join("collector.db"), SqliteOptions::default()).unwrap(),
        );
        for n in 1..=3 {
            enrol(store.as_ref(), n);
        }
        let log = Arc::new(
            LogKeeper::new(
                Arc::clone(&store),
                Ed25519Signer::from_seed(&[5; 32]).unwrap(),
                Some(ORIGIN),
                clock,
            )
            .unwrap(),
        );
        let shutdown = CancellationToken::new();
        let good = witness(&dir.path().join("witness"), &log, &shutdown).await;
        let targets = vec![good, unreachable()];
        let metrics = Arc::new(Metrics::new());
        let witnesses = Witnesses::new(targets.clone(), Arc::clone(&metrics));
        has(
            &metrics,
            "veu_collector_witness_cosigned_tree_size{witness=\"down.test\"} 0",
        );

        let head = log.sign().unwrap();
        assert_eq!(head.tree_size, 3);
        let submitted = witnesses.submit(&log, &head).await;
        assert_eq!(
            outcomes(&submitted),
            ["witness.test cosigned 3", "down.test failed"]
        );
        has(&metrics, "veu_collector_log_tree_size 3");
        for line in [
            "veu_collector_witness_submissions_total{witness=\"witness.test\",outcome=\"cosigned\"} 1",
            "veu_collector_witness_submissions_total{witness=\"witness.test\",outcome=\"failed\"} 0",
            "veu_collector_witness_cosigned_tree_size{witness=\"witness.test\"} 3",
            "veu_collector_witness_last_cosignature_timestamp_seconds{witness=\"witness.test\"} 1767225600",
            "veu_collector_witness_submissions_total{witness=\"down.test\",outcome=\"failed\"} 1",
            "veu_collector_witness_cosigned_tree_size{witness=\"down.test\"} 0",
        ] {
            has(&metrics, line);
        }

        // The same head again: only the witness that has not cosigned it is asked.
        let submitted = witnesses.submit(&log, &head).await;
        assert_eq!(outcomes(&submitted), ["down.test failed"]);
        has(
            &metrics,
            "veu_collector_witness_submissions_total{witness=\"witness.test\",outcome=\"cosigned\"} 1",
        );
        has(
            &metrics,
            "veu_collector_witness_submissions_total{witness=\"down.test\",outcome=\"failed\"} 2",
        );

        // A restart with the log unchanged: nothing to submit to the witness that cosigned,
        // and its gauges come from the cosignature kept in the store.
        let metrics = Arc::new(Metrics::new());
        let witnesses = Witnesses::new(targets.clone(), Arc::clone(&metrics));
        let submitted = witnesses.submit(&log, &head).await;
        assert_eq!(outcomes(&submitted), ["down.test failed"]);
        for line in [
            "veu_collector_witness_submissions_total{witness=\"witness.test\",outcome=\"cosigned\"} 0",
            "veu_collector_witness_cosigned_tree_size{witness=\"witness.test\"} 3",
            "veu_collector_witness_last_cosignature_timestamp_seconds{witness=\"witness.test\"} 1767225600",
        ] {
            has(&metrics, line);
        }

        // The log grows: this process does not know the witness's size, learns it from the
        // witness's 409 and gets the larger tree cosigned; the witness that is down falls
        // further behind.
        enrol(store.as_ref(), 4);
        let head = log.sign().unwrap();
        assert_eq!(head.tree_size, 4);
        let submitted = witnesses.submit(&log, &head).await;
        assert_eq!(
            outcomes(&submitted),
            ["witness.test cosigned 4", "down.test failed"]
        );
        for line in [
            "veu_collector_log_tree_size 4",
            "veu_collector_witness_submissions_total{witness=\"witness.test\",outcome=\"cosigned\"} 1",
            "veu_collector_witness_cosigned_tree_size{witness=\"witness.test\"} 4",
            "veu_collector_witness_cosigned_tree_size{witness=\"down.test\"} 0",
            "veu_collector_witness_submissions_total{witness=\"down.test\",outcome=\"failed\"} 2",
        ] {
            has(&metrics, line);
        }
        shutdown.cancel();
    }
}
