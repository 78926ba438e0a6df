//! Checks of the administrative writes: agents, enrolment tokens, decommissioning.

use std::sync::Barrier;
use std::thread;

use super::fixture::{agent, attestation, batch, enrolled_state, key, state_of};
use super::{Failure, ensure, ensure_eq};
use crate::{AttestationStore, EnrollToken, HostId, SiteId, StoreError, TokenError};

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
    ensure_eq!(
        store.host_states()?,
        vec![enrolled_state(&first), enrolled_state(&second)]
    );

    // A known key is never enrolled again, for its host or another.
    let moved = crate::AgentRecord {
        host_id: HostId("host-z".to_owned()),
        site_id: SiteId("site-z".to_owned()),
        identity: "f".repeat(64),
        enrolled_at_ms: 9_000,
        ..first.clone()
    };
    match store.put_agent(&moved) {
        Err(StoreError::AlreadyEnrolled { .. }) => {}
        other => ensure!(false, "enrolling a known key gave {other:?}"),
    }
    ensure_eq!(store.agent(&key(1))?, Some(first.clone()));

    ensure!(store.revoke_agent(&key(1), 5_000)?, "first revocation");
    ensure!(!store.revoke_agent(&key(1), 6_000)?, "second revocation");
    ensure!(
        !store.revoke_agent(&key(3), 5_000)?,
        "revoking an unknown key"
    );
    let revoked = crate::AgentRecord {
        revoked_at_ms: Some(5_000),
        ..first.clone()
    };
    ensure_eq!(store.agent(&key(1))?, Some(revoked.clone()));
    // Enrolling a revoked key again is refused; the revocation stays.
    ensure!(
        store.put_agent(&first).is_err(),
        "a revoked key enrolled again"
    );
    ensure_eq!(store.agent(&key(1))?, Some(revoked.clone()));
    ensure_eq!(store.agents()?, vec![revoked, second]);
    Ok(())
}

fn token(n: u8, expires_at_ms: i64) -> EnrollToken {
    EnrollToken {
        token_hash: [n; 32],
        site_id: SiteId(format!("site-{n}")),
        created_at_ms: 1_000,
        expires_at_ms,
        used_at_ms: None,
        rebind_host: n.is_multiple_of(2).then(|| HostId(format!("host-{n}"))),
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
    // Looking a token up spends nothing.
    ensure_eq!(store.token(&[2; 32])?, Some(token(2, 10_000)));
    ensure_eq!(store.token(&[2; 32])?, Some(token(2, 10_000)));
    ensure_eq!(store.token(&[7; 32])?, None);
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
    ensure_eq!(store.token(&[2; 32])?, Some(used));
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

pub(super) fn decommission_marks_and_releases(store: &dyn AttestationStore) -> Outcome {
    store.put_agent(&agent(1, "host-a"))?;
    store.put_agent(&agent(2, "host-b"))?;
    let a1 = attestation(1, 1, "host-a", 1_000);
    let b1 = attestation(2, 1, "host-b", 1_000);
    store.commit_blocking(batch(vec![a1.clone(), b1.clone()]))?;

    ensure!(store.decommission("host-a", 5_000)?, "first decommission");
    ensure!(!store.decommission("host-a", 6_000)?, "second decommission");
    ensure!(!store.decommission("host-nope", 5_000)?, "unknown host");
    let mut gone = state_of(&a1, Some(5_000));
    gone.tpp = 0;
    gone.devices = 0;
    ensure_eq!(store.host_states()?, vec![gone, state_of(&b1, None)]);
    // A decommissioned host's GPUs are kept as reported and count nowhere.
    let gpus = store.host_gpus()?;
    ensure!(
        gpus.iter()
            .all(|(host, gpu)| gpu.counted == (host == "host-b"))
            && gpus.len() == 16,
        "GPUs after decommissioning: {gpus:?}"
    );
    let last = store.host_changes(i64::MAX)?.pop();
    ensure!(
        last.is_some_and(|c| c.decommissioned && c.at_ms == 5_000 && c.host_id.0 == "host-a"),
        "no decommissioning change"
    );
    Ok(())
}
