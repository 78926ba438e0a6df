//! The decision of `add-checkpoint` (c2sp.org/tlog-witness): which checkpoints to cosign, and
//! the refusal, with its HTTP status, of every other one.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use proto_merkle::{EMPTY_ROOT, VerifyError as ProofError, verify_consistency};
use proto_note::{
    AddCheckpointRequest, Cosigner, NoteSignature, RequestError, SignError, SignedNote,
    VerifierKey, VerifyError,
};

use crate::state::{StateDir, StateError, Stored, origin_hash};

/// A log the witness follows: its origin and the keys it signs checkpoints with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessedLog {
    /// The checkpoints' origin line.
    pub origin: String,
    /// Its checkpoint keys (plain Ed25519); any one valid signature suffices.
    pub keys: Vec<VerifierKey>,
}

/// The witness: its key, the logs it follows and what it cosigned of each.
#[derive(Debug)]
pub struct Witness {
    cosigner: Cosigner,
    logs: BTreeMap<String, Log>,
    state: StateDir,
}

#[derive(Debug)]
struct Log {
    keys: Vec<VerifierKey>,
    /// The latest cosigned checkpoint, `None` before the first. Held across the whole check
    /// and write, so two requests cannot both extend the same size.
    latest: Mutex<Option<Stored>>,
}

impl Witness {
    /// The witness signing with `cosigner`, following `logs`, remembering in `state`.
    pub fn open(
        cosigner: Cosigner,
        logs: Vec<WitnessedLog>,
        state: StateDir,
    ) -> Result<Self, StateError> {
        let mut followed = BTreeMap::new();
        for log in logs {
            let latest = state.load(&log.origin)?;
            followed.insert(
                log.origin,
                Log {
                    keys: log.keys,
                    latest: Mutex::new(latest),
                },
            );
        }
        Ok(Self {
            cosigner,
            logs: followed,
            state,
        })
    }

    /// The verifier key auditors pin to check this witness's cosignatures.
    pub fn verifier_key(&self) -> &VerifierKey {
        self.cosigner.verifier_key()
    }

    /// Each followed origin and the size of its latest cosigned checkpoint (0 before any).
    pub fn sizes(&self) -> Vec<(String, u64)> {
        self.logs
            .iter()
            .map(|(origin, log)| {
                (
                    origin.clone(),
                    lock(&log.latest).as_ref().map_or(0, |s| s.size),
                )
            })
            .collect()
    }

    /// The latest cosigned checkpoint note of the log whose origin hashes to `hash` (lowercase
    /// hex SHA-256), for `GET /<origin hash>/checkpoint`.
    pub fn checkpoint_by_origin_hash(&self, hash: &str) -> Option<String> {
        let log = self
            .logs
            .iter()
            .find(|(origin, _)| origin_hash(origin) == hash)?
            .1;
        lock(&log.latest).as_ref().map(|stored| stored.note.clone())
    }

    /// Handles one `add-checkpoint` body at time `now` (POSIX seconds): the cosignature lines
    /// to answer with, or why not. The new checkpoint is on disk before this returns `Ok`.
    ///
    /// Blocking (it fsyncs): call it off the async executor.
    pub fn add_checkpoint(&self, body: &[u8], now: u64) -> Result<Cosigned, Refusal> {
        let request = AddCheckpointRequest::parse(body).map_err(Refusal::Malformed)?;
        let checkpoint = request.checkpoint();
        let origin = checkpoint.origin();
        let log = self
            .logs
            .get(origin)
            .ok_or_else(|| Refusal::UnknownOrigin {
                origin: origin.to_owned(),
            })?;
        let verified = request
            .note()
            .verify(&log.keys)
            .map_err(|reason| Refusal::Forbidden {
                origin: origin.to_owned(),
                reason,
            })?;

        let mut latest = lock(&log.latest);
        let (witness_size, witness_root) = latest
            .as_ref()
            .map_or((0, EMPTY_ROOT), |stored| (stored.size, stored.root));
        if latest.is_some()
            && checkpoint.size() == witness_size
            && *checkpoint.root() != witness_root
        {
            tracing::warn!(
                origin,
                size = witness_size,
                old_size = request.old_size(),
                checkpoint = ?request.note().to_string(),
                "split view: the log signed a checkpoint of the size this witness cosigned, with another root"
            );
        }
        if request.old_size() != witness_size {
            return Err(Refusal::Conflict {
                origin: origin.to_owned(),
                old_size: request.old_size(),
                witness_size,
            });
        }
        verify_consistency(
            witness_size,
            checkpoint.size(),
            &witness_root,
            checkpoint.root(),
            request.proof(),
        )
        .map_err(|reason| match reason {
            ProofError::RootMismatch if checkpoint.size() == witness_size && witness_size > 0 => {
                Refusal::SplitView {
                    origin: origin.to_owned(),
                    size: witness_size,
                }
            }
            reason => Refusal::Inconsistent {
                origin: origin.to_owned(),
                old_size: witness_size,
                size: checkpoint.size(),
                reason,
            },
        })?;

        // A cosignature never states time zero.
        let cosignature = self
            .cosigner
            .cosign(request.note().text(), now.max(1))
            .map_err(Refusal::Sign)?;
        // What is kept, and served to monitors: the log's verified signatures and the
        // cosignature, not whatever else the submitter attached.
        let mut signatures: Vec<NoteSignature> = verified
            .verified()
            .iter()
            .map(|v| v.signature().clone())
            .collect();
        signatures.push(cosignature.clone());
        let note = SignedNote::new(verified.text().to_owned(), signatures)
            .map_err(|error| Refusal::Sign(error.into()))?
            .to_string();
        self.state.store(origin, &note).map_err(Refusal::Store)?;
        *latest = Some(Stored {
            size: checkpoint.size(),
            root: *checkpoint.root(),
            note,
        });
        Ok(Cosigned {
            origin: origin.to_owned(),
            old_size: witness_size,
            size: checkpoint.size(),
            cosignatures: vec![cosignature],
        })
    }
}

/// A checkpoint the witness cosigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cosigned {
    /// The log's origin.
    pub origin: String,
    /// The size it extended.
    pub old_size: u64,
    /// The new size.
    pub size: u64,
    /// The cosignature lines to answer with.
    pub cosignatures: Vec<NoteSignature>,
}

/// The latest checkpoint, even if a thread panicked holding it: it is only ever replaced
/// whole, after the disk, so it is never half-updated.
fn lock(latest: &Mutex<Option<Stored>>) -> std::sync::MutexGuard<'_, Option<Stored>> {
    latest.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Why a checkpoint was not cosigned.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The body does not parse, or its old size is past the checkpoint's.
    #[error("malformed request: {0}")]
    Malformed(RequestError),
    /// No configured log has this origin.
    #[error("unknown log origin {origin:?}")]
    UnknownOrigin {
        /// The origin.
        origin: String,
    },
    /// No valid signature by the log's key, or an invalid one.
    #[error("the checkpoint of {origin} is not signed by its log key: {reason}")]
    Forbidden {
        /// The origin.
        origin: String,
        /// What the verification found.
        reason: VerifyError,
    },
    /// The client's old size is not the witness's latest size.
    #[error(
        "old size {old_size} is not the latest size this witness cosigned for {origin}, {witness_size}"
    )]
    Conflict {
        /// The origin.
        origin: String,
        /// The old size the client sent.
        old_size: u64,
        /// The witness's latest cosigned size.
        witness_size: u64,
    },
    /// The proof does not show the checkpoint extends the witness's latest one.
    #[error(
        "the checkpoint of {origin} at size {size} is not consistent with size {old_size}: {reason}"
    )]
    Inconsistent {
        /// The origin.
        origin: String,
        /// The witness's latest size.
        old_size: u64,
        /// The checkpoint's size.
        size: u64,
        /// What the proof check found.
        reason: ProofError,
    },
    /// The same size as the latest cosigned checkpoint, another root: proof that the log
    /// shows two histories.
    #[error(
        "split view: {origin} signed another root for size {size}, which this witness cosigned"
    )]
    SplitView {
        /// The origin.
        origin: String,
        /// The size.
        size: u64,
    },
    /// The cosignature could not be made.
    #[error("cannot cosign: {0}")]
    Sign(SignError),
    /// The new checkpoint could not be stored.
    #[error("cannot store the checkpoint: {0}")]
    Store(StateError),
}

impl Refusal {
    /// The HTTP status the witness protocol gives this refusal; the one place it is decided.
    pub fn status(&self) -> u16 {
        match self {
            Self::Malformed(_) => 400,
            Self::Forbidden { .. } => 403,
            Self::UnknownOrigin { .. } => 404,
            Self::Conflict { .. } => 409,
            Self::Inconsistent { .. } | Self::SplitView { .. } => 422,
            Self::Sign(_) | Self::Store(_) => 500,
        }
    }

    /// The origin the request named, once it parsed.
    pub fn origin(&self) -> Option<&str> {
        match self {
            Self::UnknownOrigin { origin }
            | Self::Forbidden { origin, .. }
            | Self::Conflict { origin, .. }
            | Self::Inconsistent { origin, .. }
            | Self::SplitView { origin, .. } => Some(origin),
            Self::Malformed(_) | Self::Sign(_) | Self::Store(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::sync::Arc;

    use proto_merkle::{MemoryTree, consistency_proof, leaf_hash};
    use proto_note::{Hash, KeyName, LogSigner, SignedNote};
    use ring::signature::Ed25519KeyPair;

    use super::*;

    /// A witnessed log's latest root.
    fn root_of(witness: &Witness, origin: &str) -> Option<Hash> {
        lock(&witness.logs.get(origin)?.latest)
            .as_ref()
            .map(|stored| stored.root)
    }

    const ORIGIN: &str = "veu-attest.example/log/test";

    fn log_signer(seed: u8) -> LogSigner {
        LogSigner::from_key_pair(
            ORIGIN,
            Ed25519KeyPair::from_seed_unchecked(&[seed; 32]).unwrap(),
        )
        .unwrap()
    }

    fn witness(dir: &std::path::Path) -> Witness {
        let cosigner = Cosigner::new(
            KeyName::new("witness.example/w").unwrap(),
            Ed25519KeyPair::from_seed_unchecked(&[9; 32]).unwrap(),
        );
        let logs = vec![WitnessedLog {
            origin: ORIGIN.into(),
            keys: vec![log_signer(1).verifier_key().clone()],
        }];
        Witness::open(cosigner, logs, StateDir::open(dir).unwrap()).unwrap()
    }

    fn tree(size: u64, tag: u8) -> MemoryTree {
        MemoryTree::from_leaves(
            (0..size).map(|i| leaf_hash(&[&[tag][..], &i.to_be_bytes()].concat())),
        )
    }

    fn body(old: u64, tree: &MemoryTree, signer: &LogSigner) -> Vec<u8> {
        let proof = if old == 0 {
            Vec::new()
        } else {
            consistency_proof(tree, old, tree.size()).unwrap()
        };
        let note = signer.sign_checkpoint(tree.size(), tree.root()).unwrap();
        AddCheckpointRequest::new(old, proof, note)
            .unwrap()
            .to_string()
            .into_bytes()
    }

    #[test]
    fn each_refusal_has_the_status_the_spec_gives_it() {
        let dir = tempfile::tempdir().unwrap();
        let witness = witness(dir.path());
        let log = log_signer(1);
        let full = tree(10, 0);
        let status = |body: &[u8]| witness.add_checkpoint(body, 1000).map_err(|r| r.status());

        assert_eq!(status(b"old 0\n"), Err(400));
        let unknown = LogSigner::from_key_pair(
            "other.example/log",
            Ed25519KeyPair::from_seed_unchecked(&[1; 32]).unwrap(),
        )
        .unwrap();
        assert_eq!(status(&body(0, &tree(3, 0), &unknown)), Err(404));
        assert_eq!(status(&body(0, &tree(3, 0), &log_signer(2))), Err(403));
        // A size-zero checkpoint must carry the empty tree's root.
        let bad_empty =
            AddCheckpointRequest::new(0, vec![], log.sign_checkpoint(0, [1; 32]).unwrap())
                .unwrap()
                .to_string();
        assert_eq!(status(bad_empty.as_bytes()), Err(422));
        // From zero, the proof must be empty.
        let with_proof = AddCheckpointRequest::new(
            0,
            vec![[0; 32]],
            log.sign_checkpoint(3, tree(3, 0).root()).unwrap(),
        )
        .unwrap()
        .to_string();
        assert_eq!(status(with_proof.as_bytes()), Err(422));

        assert_eq!(
            status(&body(0, &tree(4, 0), &log))
                .unwrap()
                .cosignatures
                .len(),
            1
        );
        assert_eq!(status(&body(0, &full, &log)), Err(409));
        // A proof from 4 to 10 of another tree: inconsistent.
        assert_eq!(status(&body(4, &tree(10, 1), &log)), Err(422));
        assert_eq!(status(&body(4, &full, &log)).unwrap().cosignatures.len(), 1);
        // The same size again with the same root is cosigned again; with another root it is a
        // split view.
        assert_eq!(
            status(&body(10, &full, &log)).unwrap().cosignatures.len(),
            1
        );
        assert_eq!(status(&body(10, &tree(10, 1), &log)), Err(422));
        // A rollback: its old size cannot be the witness's and below the checkpoint's.
        let smaller = log.sign_checkpoint(9, tree(9, 0).root()).unwrap();
        assert_eq!(status(format!("old 10\n\n{smaller}").as_bytes()), Err(400));
        assert_eq!(status(&body(4, &tree(9, 0), &log)), Err(409));
        assert_eq!(root_of(&witness, ORIGIN), Some(full.root()));
    }

    #[test]
    fn the_cosignature_verifies_and_the_state_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let log = log_signer(1);
        let full = tree(5, 0);
        let cosignatures = {
            let witness = witness(dir.path());
            let lines = witness
                .add_checkpoint(&body(0, &full, &log), 1_700_000_000)
                .unwrap()
                .cosignatures;
            let mut note = log.sign_checkpoint(5, full.root()).unwrap();
            note.add_signature(lines[0].clone()).unwrap();
            let verified = note
                .verify(std::slice::from_ref(witness.verifier_key()))
                .unwrap();
            assert_eq!(verified.verified()[0].timestamp(), Some(1_700_000_000));
            let stored = witness
                .checkpoint_by_origin_hash(&origin_hash(ORIGIN))
                .unwrap();
            assert_eq!(SignedNote::parse(stored.as_bytes()).unwrap(), note);
            lines
        };
        assert_eq!(cosignatures.len(), 1);
        let witness = witness(dir.path());
        assert_eq!(witness.sizes(), vec![(ORIGIN.to_owned(), 5)]);
        assert!(matches!(
            witness.add_checkpoint(&body(0, &tree(3, 0), &log), 1),
            Err(Refusal::Conflict {
                witness_size: 5,
                ..
            })
        ));
    }

    #[test]
    fn only_the_log_s_verified_signatures_are_kept_with_the_cosignature() {
        let dir = tempfile::tempdir().unwrap();
        let witness = witness(dir.path());
        let log = log_signer(1);
        let full = tree(3, 0);
        let mut note = log.sign_checkpoint(3, full.root()).unwrap();
        let stranger = proto_note::Ed25519NoteSigner::from_key_pair(
            KeyName::new("stranger.example").unwrap(),
            Ed25519KeyPair::from_seed_unchecked(&[5; 32]).unwrap(),
        );
        let foreign = SignedNote::sign(note.text(), &[&stranger]).unwrap();
        note.add_signature(foreign.signatures()[0].clone()).unwrap();
        let body = AddCheckpointRequest::new(0, vec![], note)
            .unwrap()
            .to_string();
        let cosigned = witness.add_checkpoint(body.as_bytes(), 7).unwrap();
        let stored = witness
            .checkpoint_by_origin_hash(&origin_hash(ORIGIN))
            .unwrap();
        let stored = SignedNote::parse(stored.as_bytes()).unwrap();
        let names: Vec<&str> = stored
            .signatures()
            .iter()
            .map(|s| s.name().as_str())
            .collect();
        assert_eq!(names, [ORIGIN, "witness.example/w"]);
        assert_eq!(stored.signatures()[1], cosigned.cosignatures[0]);
    }

    #[test]
    fn a_second_witness_cannot_open_the_same_state() {
        let dir = tempfile::tempdir().unwrap();
        let _first = StateDir::open(dir.path()).unwrap();
        assert!(matches!(
            StateDir::open(dir.path()),
            Err(StateError::Locked { .. })
        ));
    }

    #[test]
    fn a_corrupt_state_file_stops_the_witness() {
        let dir = tempfile::tempdir().unwrap();
        {
            let state = StateDir::open(dir.path()).unwrap();
            std::fs::write(state.file_of(ORIGIN), b"garbage").unwrap();
        }
        let state = StateDir::open(dir.path()).unwrap();
        assert!(matches!(
            state.load(ORIGIN),
            Err(StateError::Corrupt { .. })
        ));
    }

    #[test]
    fn concurrent_requests_from_one_size_give_one_cosignature() {
        let dir = tempfile::tempdir().unwrap();
        let witness = Arc::new(witness(dir.path()));
        let log = log_signer(1);
        let bodies: Vec<Vec<u8>> = (1..=8).map(|n| body(0, &tree(n, 0), &log)).collect();
        let handles: Vec<_> = bodies
            .into_iter()
            .map(|body| {
                let witness = Arc::clone(&witness);
                std::thread::spawn(move || witness.add_checkpoint(&body, 5).is_ok())
            })
            .collect();
        let won = handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|ok| *ok)
            .count();
        assert_eq!(won, 1);
    }
}
