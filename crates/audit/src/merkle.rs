//! RFC 6962 / RFC 9162 Merkle tree hashing, proofs and proof verification.
//!
//! Leaf hash = SHA-256(0x00 ‖ data), interior node = SHA-256(0x01 ‖ left ‖ right), the
//! empty tree's root = SHA-256(""). Proofs are computed over a [`LeafHashes`] source (the
//! in-memory slice in tests, the log's index file in production) and verified with the
//! RFC 9162 §2.1.3.2 and §2.1.4.2 algorithms.

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// The root of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// RFC 6962 leaf hash: SHA-256(0x00 ‖ data).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// RFC 6962 interior node hash: SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Height of the subtrees stored as tiles (256 leaves each).
pub const TILE_HEIGHT: u32 = 8;
/// Leaves per tile.
pub const TILE_LEAVES: u64 = 1 << TILE_HEIGHT;

/// The right edge of a Merkle tree: the roots of its perfect subtrees, largest first.
/// O(log n) memory; appending a leaf costs amortised one node hash.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// `(height, root)` of each perfect subtree, left to right (heights strictly decreasing).
    stack: Vec<(u32, Hash)>,
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash. Returns the root of the 256-leaf tile this leaf completed, if
    /// it completed one.
    pub fn push(&mut self, leaf: Hash) -> Option<Hash> {
        self.push_subtree(leaf, 0)
    }

    /// Appends a perfect subtree of `2^height` leaves with root `root`. The tree's size
    /// must be a multiple of `2^height` (the subtree is aligned). Returns the root of a tile
    /// the append completed, if any.
    ///
    /// # Panics
    /// When the size is not a multiple of `2^height` (a caller bug).
    pub fn push_subtree(&mut self, root: Hash, height: u32) -> Option<Hash> {
        assert!(
            self.size.trailing_zeros() >= height || self.size == 0,
            "unaligned subtree append"
        );
        let mut node = root;
        let mut h = height;
        let mut tile = (h == TILE_HEIGHT).then_some(node);
        while let Some(&(top_h, top)) = self.stack.last() {
            if top_h != h {
                break;
            }
            self.stack.pop();
            node = node_hash(&top, &node);
            h += 1;
            if h == TILE_HEIGHT {
                tile = Some(node);
            }
        }
        self.stack.push((h, node));
        self.size += 1 << height;
        tile
    }

    /// The RFC 6962 root of the tree.
    pub fn root(&self) -> Hash {
        let mut iter = self.stack.iter().rev();
        let Some(&(_, mut root)) = iter.next() else {
            return empty_root();
        };
        for (_, left) in iter {
            root = node_hash(left, &root);
        }
        root
    }
}

/// Where proofs read leaf hashes from.
pub trait LeafHashes {
    /// Number of leaves available.
    fn len(&self) -> u64;
    /// Whether there are no leaves.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The RFC 6962 root of leaves `start..end` (`start < end <= len`).
    fn range_root(&mut self, start: u64, end: u64) -> std::io::Result<Hash>;
}

impl LeafHashes for &[Hash] {
    fn len(&self) -> u64 {
        <[Hash]>::len(self) as u64
    }

    fn range_root(&mut self, start: u64, end: u64) -> std::io::Result<Hash> {
        let mut f = Frontier::new();
        for h in &self[start as usize..end as usize] {
            f.push(*h);
        }
        Ok(f.root())
    }
}

/// Largest power of two strictly smaller than `n` (`n >= 2`).
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// The inclusion proof (audit path) of leaf `index` in the tree of the first `size` leaves,
/// RFC 9162 §2.1.3.1.
pub fn inclusion_proof<S: LeafHashes + ?Sized>(
    source: &mut S,
    index: u64,
    size: u64,
) -> std::io::Result<Vec<Hash>> {
    if index >= size || size > source.len() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "no leaf {index} in a tree of {size} (log has {})",
                source.len()
            ),
        ));
    }
    let mut path = Vec::new();
    inclusion_rec(source, index, 0, size, &mut path)?;
    Ok(path)
}

fn inclusion_rec<S: LeafHashes + ?Sized>(
    source: &mut S,
    m: u64,
    start: u64,
    end: u64,
    path: &mut Vec<Hash>,
) -> std::io::Result<()> {
    let n = end - start;
    if n <= 1 {
        return Ok(());
    }
    let k = split_point(n);
    if m < k {
        inclusion_rec(source, m, start, start + k, path)?;
        path.push(source.range_root(start + k, end)?);
    } else {
        inclusion_rec(source, m - k, start + k, end, path)?;
        path.push(source.range_root(start, start + k)?);
    }
    Ok(())
}

/// The consistency proof between the trees of the first `old` and first `new` leaves,
/// RFC 9162 §2.1.4.1 (empty when `old == new` or `old == 0`).
pub fn consistency_proof<S: LeafHashes + ?Sized>(
    source: &mut S,
    old: u64,
    new: u64,
) -> std::io::Result<Vec<Hash>> {
    if old > new || new > source.len() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "no consistency proof from {old} to {new} (log has {})",
                source.len()
            ),
        ));
    }
    let mut proof = Vec::new();
    if old == 0 || old == new {
        return Ok(proof);
    }
    subproof(source, old, 0, new, true, &mut proof)?;
    Ok(proof)
}

fn subproof<S: LeafHashes + ?Sized>(
    source: &mut S,
    m: u64,
    start: u64,
    end: u64,
    complete: bool,
    proof: &mut Vec<Hash>,
) -> std::io::Result<()> {
    let n = end - start;
    if m == n {
        if !complete {
            proof.push(source.range_root(start, end)?);
        }
        return Ok(());
    }
    let k = split_point(n);
    if m <= k {
        subproof(source, m, start, start + k, complete, proof)?;
        proof.push(source.range_root(start + k, end)?);
    } else {
        subproof(source, m - k, start + k, end, false, proof)?;
        proof.push(source.range_root(start, start + k)?);
    }
    Ok(())
}

/// Verifies an inclusion proof (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0 && r == *root
}

/// Verifies a consistency proof between `(old, old_root)` and `(new, new_root)`
/// (RFC 9162 §2.1.4.2). From the empty tree, any tree is consistent (with an empty proof).
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> bool {
    if old > new {
        return false;
    }
    if old == new {
        return proof.is_empty() && old_root == new_root;
    }
    if old == 0 {
        return proof.is_empty() && *old_root == empty_root();
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let (mut fnode, mut snode) = (old - 1, new - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    fr == *old_root && sr == *new_root && snode == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// MTH straight from RFC 6962 §2.1, recursively over the data.
    fn naive_root(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split_point(n as u64) as usize;
                node_hash(&naive_root(&leaves[..k]), &naive_root(&leaves[k..]))
            }
        }
    }

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(format!("entry {i}").as_bytes()))
            .collect()
    }

    #[test]
    fn known_answers_match_rfc6962_test_vectors() {
        // From the Certificate Transparency test data (Go merkle package): the empty root
        // and the roots of the 8-leaf reference tree.
        assert_eq!(
            hex(&empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex(&leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        let data: [&[u8]; 8] = [
            b"",
            &[0x00],
            &[0x10],
            &[0x20, 0x21],
            &[0x30, 0x31],
            &[0x40, 0x41, 0x42, 0x43],
            &[0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57],
            &[
                0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d,
                0x6e, 0x6f,
            ],
        ];
        let expected = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        let mut f = Frontier::new();
        for (d, e) in data.iter().zip(expected) {
            f.push(leaf_hash(d));
            assert_eq!(hex(&f.root()), e, "root at size {}", f.size());
        }
    }

    fn hex(h: &Hash) -> String {
        h.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn tiles_are_emitted_every_256_leaves_and_subtree_appends_agree() {
        let all = leaves(1000);
        let mut by_leaf = Frontier::new();
        let mut tiles = Vec::new();
        for h in &all {
            if let Some(t) = by_leaf.push(*h) {
                tiles.push(t);
            }
        }
        assert_eq!(tiles.len(), 3);
        let mut by_tile = Frontier::new();
        for t in &tiles {
            by_tile.push_subtree(*t, TILE_HEIGHT);
        }
        for h in &all[768..] {
            by_tile.push(*h);
        }
        assert_eq!(by_tile.root(), by_leaf.root());
        assert_eq!(by_leaf.root(), naive_root(&all));
        assert_eq!(tiles[1], naive_root(&all[256..512]));
    }

    proptest! {
        #[test]
        fn frontier_root_equals_naive_root(n in 0usize..300) {
            let all = leaves(n);
            let mut f = Frontier::new();
            for h in &all { f.push(*h); }
            prop_assert_eq!(f.root(), naive_root(&all));
        }

        #[test]
        fn inclusion_proofs_verify_and_reject_other_leaves(n in 1u64..200, seed in 0u64..1000) {
            let all = leaves(n as usize);
            let index = seed % n;
            let root = naive_root(&all);
            let proof = inclusion_proof(&mut all.as_slice(), index, n).unwrap();
            prop_assert!(verify_inclusion(&all[index as usize], index, n, &proof, &root));
            let other = leaf_hash(b"not in the log");
            prop_assert!(!verify_inclusion(&other, index, n, &proof, &root));
            if n > 1 {
                let wrong_index = (index + 1) % n;
                prop_assert!(!verify_inclusion(&all[index as usize], wrong_index, n, &proof, &root));
            }
        }

        #[test]
        fn consistency_between_random_checkpoint_sizes(a in 0u64..300, b in 0u64..300, flip in 0usize..64) {
            let (old, new) = if a <= b { (a, b) } else { (b, a) };
            let all = leaves(new as usize);
            let old_root = naive_root(&all[..old as usize]);
            let new_root = naive_root(&all);
            let proof = consistency_proof(&mut all.as_slice(), old, new).unwrap();
            prop_assert!(verify_consistency(old, new, &old_root, &new_root, &proof));
            // A tree whose prefix was rewritten is not consistent with the old root.
            if old > 0 && old < new {
                let mut forged = all;
                forged[(flip as u64 % old) as usize] = leaf_hash(b"rewritten");
                let forged_root = naive_root(&forged);
                let forged_proof = consistency_proof(&mut forged.as_slice(), old, new).unwrap();
                prop_assert!(!verify_consistency(old, new, &old_root, &forged_root, &forged_proof));
                // A damaged proof fails.
                if !proof.is_empty() {
                    let mut bad = proof;
                    let i = flip % bad.len();
                    bad[i][0] ^= 1;
                    prop_assert!(!verify_consistency(old, new, &old_root, &new_root, &bad));
                }
            }
        }
    }
}
