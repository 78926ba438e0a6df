//! Checks of the administrative writes: agents, enrolment tokens, decommissioning.

use std::sync::Barrier;
use std::thread;

use super::fixture::{agent, attestation, batch, key, state_of};
use super::{Failure, ensure, ensure_eq};
use crate::{AttestationStore, EnrollToken, TokenError};

type Outcome = Result<(), Failure>;

pub(super) fn agents_put_replace_revoke_list(store: &dyn AttestationStore) -> Outcome {
    ensure!(store.agents()?.is_empty(), "an empty store has agents");
    let first = agent(1, "host-a");
    let second = agent(2, "host-b");
    // Put out of order: the listing is by key id.
    store.put_agent(&second)?;
    store.put_agent(&first)?;
    ensure_eq!(store.agents()?, vec![first.clone(), second.clone()]);
    ensure_eq!(store.agent(&key(1))?, Some(first.clone()));
    ensure_eq!(store.agent(&key(3))?, None);

    let moved = crate::AgentRecord {
        host_id: "host-z".to_owned(),
        site_id: "site-z".to_owned(),
        country: "DE".to_owned(),
        identity: "f".repeat(64),
        enrolled_at_ms: 9_000,
        ..first.clone()
    };
    store.put_agent(&moved)?;
    ensure_eq!(store.agent(&key(1))?, Some(moved.clone()));

    ensure!(store.revoke_agent(&key(1), 5_000)?, "first revocation");
    ensure!(!store.revoke_agent(&key(1), 6_000)?, "second revocation");
    ensure!(
        !store.revoke_agent(&key(3), 5_000)?,
        "revoking an unknown key"
    );
    let revoked = crate::AgentRecord {
        revoked_at_ms: Some(5_000),
        ..moved.clone()
    };
    ensure_eq!(store.agent(&key(1))?, Some(revoked.clone()));
    // Enrolling a revoked key again does not lift the revocation.
    store.put_agent(&moved)?;
    ensure_eq!(store.agent(&key(1))?, Some(revoked.clone()));
    ensure_eq!(store.agents()?, vec![revoked, second]);
    Ok(())
}

fn token(n: u8, expires_at_ms: i64) -> EnrollToken {
    EnrollToken {
        token_hash: [n; 32],
        site_id: format!("site-{n}"),
        created_at_ms: 1_000,
        expires_at_ms,
        used_at_ms: None,
    }
}

pub(super) fn tokens_unknown_expired_used(store: &dyn AttestationStore) -> Outcome {
    let is = |result: Result<EnrollToken, TokenError>, want: &str| -> Outcome {
        let got = match &result {
            Err(TokenError::Unknown) => "unknown",
            Err(TokenError::Expired) => "expired",
            Err(TokenError::AlreadyUsed) => "used",
            _ => "",
        };
        ensure!(got == want, "expected {want}, got {result:?}");
        Ok(())
    };
    is(store.use_token(&[7; 32], 2_000), "unknown")?;

    store.put_token(&token(1, 10_000))?;
    // The expiry instant itself is too late, and an expired token stays unused.
    is(store.use_token(&[1; 32], 10_000), "expired")?;
    is(store.use_token(&[1; 32], 10_001), "expired")?;

    store.put_token(&token(2, 10_000))?;
    let used = store.use_token(&[2; 32], 9_999)?;
    ensure_eq!(
        used,
        EnrollToken {
            used_at_ms: Some(9_999),
            ..token(2, 10_000)
        }
    );
    is(store.use_token(&[2; 32], 9_999), "used")?;
    is(store.use_token(&[2; 32], 20_000), "used")?;
    Ok(())
}

pub(super) fn tokens_spent_once_under_contention(store: &dyn AttestationStore) -> Outcome {
    const SPENDERS: usize = 8;
    store.put_token(&token(3, 10_000))?;
    let start = Barrier::new(SPENDERS);
    let results: Vec<_> = thread::scope(|scope| {
        let spenders: Vec<_> = (0..SPENDERS)
            .map(|_| {
                let start = &start;
                scope.spawn(move || {
                    start.wait();
                    store.use_token(&[3; 32], 5_000)
                })
            })
            .collect();
        spenders.into_iter().map(|s| s.join()).collect()
    });
    let mut spent = 0;
    for result in results {
        match result {
            Ok(Ok(_)) => spent += 1,
            Ok(Err(TokenError::AlreadyUsed)) => {}
            other => ensure!(false, "a spender got {other:?}"),
        }
    }
    ensure_eq!(spent, 1);
    Ok(())
}

pub(super) fn decommission_marks_and_reactivates(store: &dyn AttestationStore) -> Outcome {
    store.put_agent(&agent(1, "host-a"))?;
    store.put_agent(&agent(2, "host-b"))?;
    let a1 = attestation(1, 1, "host-a", 1_000);
    let b1 = attestation(2, 1, "host-b", 1_000);
    store.commit_blocking(batch(vec![a1.clone(), b1.clone()]))?;

    ensure!(store.decommission("host-a", 5_000)?, "first decommission");
    ensure!(!store.decommission("host-a", 6_000)?, "second decommission");
    ensure!(!store.decommission("host-nope", 5_000)?, "unknown host");
    ensure_eq!(
        store.host_states()?,
        vec![state_of(&a1, Some(5_000)), state_of(&b1, None)]
    );
    // A decommissioned host's GPUs are free to appear elsewhere.
    let owners = store.gpu_owners()?;
    ensure!(
        owners.iter().all(|(_, _, host)| host == "host-b") && owners.len() == 8,
        "owners after decommissioning: {owners:?}"
    );

    // A link issued before the decommissioning (a late replay) leaves it decommissioned.
    let late = attestation(1, 2, "host-a", 4_000);
    store.commit_blocking(batch(vec![late.clone()]))?;
    ensure_eq!(
        store.host_states()?,
        vec![state_of(&late, Some(5_000)), state_of(&b1, None)]
    );
    // Attesting after it puts the host back in service.
    let back = attestation(1, 3, "host-a", 7_000);
    store.commit_blocking(batch(vec![back.clone()]))?;
    ensure_eq!(
        store.host_states()?,
        vec![state_of(&back, None), state_of(&b1, None)]
    );
    ensure_eq!(store.gpu_owners()?.len(), 16);
    Ok(())
}
