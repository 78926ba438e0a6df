//! Published vectors, a naive RFC 6962 reference, frontier agreement, and node counts at
//! sizes no test could fill with leaves.

mod frontier;
mod reference;
mod scale;
mod vectors;
mod verify;

use std::cell::RefCell;

use crate::{Hash, NodeSource, leaf_hash};

/// Decodes 64 hex digits.
fn hex(text: &str) -> Hash {
    assert_eq!(text.len(), 64, "{text}");
    let mut hash = [0; 32];
    for (byte, pair) in hash.iter_mut().zip(text.as_bytes().chunks(2)) {
        let pair = std::str::from_utf8(pair).unwrap();
        *byte = u8::from_str_radix(pair, 16).unwrap();
    }
    hash
}

/// Distinct leaf hashes, reproducible from a seed.
fn leaves(count: u64, seed: u64) -> Vec<Hash> {
    (0..count)
        .map(|index| leaf_hash(&[seed.to_be_bytes(), index.to_be_bytes()].concat()))
        .collect()
}

/// A source that remembers every node asked for and refuses any that is not a complete
/// subtree inside `size` leaves.
struct Recording<S> {
    inner: S,
    size: u64,
    asked: RefCell<Vec<(u32, u64)>>,
}

/// A node that is not a complete subtree inside the tree size.
#[derive(Debug, PartialEq, Eq)]
struct Outside {
    level: u32,
    index: u64,
}

impl<S> Recording<S> {
    fn new(inner: S, size: u64) -> Self {
        Self {
            inner,
            size,
            asked: RefCell::new(Vec::new()),
        }
    }

    /// Every node asked for since the last call, sorted.
    fn take(&self) -> Vec<(u32, u64)> {
        let mut asked = self.asked.take();
        asked.sort_unstable();
        asked
    }
}

impl<S: NodeSource<Error = std::convert::Infallible>> NodeSource for Recording<S> {
    type Error = Outside;

    fn node(&self, level: u32, index: u64) -> Result<Hash, Outside> {
        self.asked.borrow_mut().push((level, index));
        let end = index
            .checked_add(1)
            .and_then(|next| next.checked_mul(1u64.checked_shl(level)?));
        if end.is_none_or(|end| end > self.size) {
            return Err(Outside { level, index });
        }
        match self.inner.node(level, index) {
            Ok(hash) => Ok(hash),
            Err(never) => match never {},
        }
    }
}
