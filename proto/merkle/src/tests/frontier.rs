//! The frontier against a tree that keeps every node.

use super::leaves;
use crate::{EMPTY_ROOT, Frontier, Hash, MemoryTree, NodeSource, root};

const SIZE: u64 = 300;

fn node(tree: &MemoryTree, level: u32, index: u64) -> Hash {
    match tree.node(level, index) {
        Ok(hash) => hash,
        Err(never) => match never {},
    }
}

#[test]
fn the_empty_frontier() {
    assert_eq!(Frontier::new(), Frontier::default());
    assert_eq!(Frontier::new().size(), 0);
    assert_eq!(Frontier::new().root(), EMPTY_ROOT);
    assert_eq!(MemoryTree::new().root(), EMPTY_ROOT);
    assert_eq!(MemoryTree::new().size(), 0);
}

#[test]
fn pushes_agree_with_the_memory_tree_and_return_every_node_once() {
    let leaves = leaves(SIZE, 3);
    let mut frontier = Frontier::new();
    let mut tree = MemoryTree::new();
    let mut returned = Vec::new();
    for (size, leaf) in (1..).zip(leaves.iter().copied()) {
        let completed = frontier.push(leaf);
        tree.push(leaf);
        assert_eq!(frontier.size(), size);
        assert_eq!(tree.size(), size);
        assert_eq!(frontier.root(), tree.root(), "size {size}");

        assert_eq!(completed.first(), Some(&(0, size - 1, leaf)));
        for (at, &(level, index, hash)) in completed.iter().enumerate() {
            assert_eq!(level as usize, at, "lowest level first");
            // The node ends at the new last leaf.
            assert_eq!((index + 1) << level, size);
            assert_eq!(hash, node(&tree, level, index));
        }
        returned.extend(completed);
    }
    // Every complete subtree of the final tree, each exactly once.
    let mut every = Vec::new();
    for level in 0..u64::BITS {
        for index in 0..SIZE >> level {
            every.push((level, index, node(&tree, level, index)));
        }
    }
    returned.sort_unstable();
    every.sort_unstable();
    assert_eq!(returned, every);
}

#[test]
fn restore_gives_the_pushed_frontier_and_later_pushes_agree() {
    let leaves = leaves(SIZE, 4);
    let tree = MemoryTree::from_leaves(leaves.clone());
    let mut pushed = Frontier::new();
    for size in 0..=SIZE {
        let mut restored = Frontier::restore(&tree, size).unwrap();
        assert_eq!(restored, pushed, "size {size}");
        assert_eq!(restored.root(), root(&tree, size).unwrap());
        for (later, leaf) in (size + 1..)
            .zip(leaves[size as usize..].iter().copied())
            .take(40)
        {
            let completed = restored.push(leaf);
            assert_eq!(restored.root(), root(&tree, later).unwrap());
            for (level, index, hash) in completed {
                assert_eq!(hash, node(&tree, level, index));
            }
        }
        if let Some(&leaf) = leaves.get(size as usize) {
            pushed.push(leaf);
        }
    }
}

#[test]
fn from_leaves_is_pushing_each() {
    let leaves = leaves(77, 5);
    let mut pushed = MemoryTree::new();
    for &leaf in &leaves {
        pushed.push(leaf);
    }
    let collected = MemoryTree::from_leaves(leaves);
    assert_eq!(collected.size(), pushed.size());
    assert_eq!(collected.root(), pushed.root());
}
