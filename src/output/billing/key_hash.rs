//! Keys as 8 bytes, for the sets that remember invoice lines however long their names are.
//!
//! The standard library's SipHash was a tenth of billing.csv's time on a file of millions of
//! lines, hashing each line's key up to three times. This hash takes 8 bytes a step, mixed by
//! a 64 × 64 → 128-bit multiply by a number drawn once per process (as wyhash mixes): the sets
//! only ever compare keys of one run, and a multiplier no file can know keeps a hostile file
//! from aiming collisions at them (a collision would hide a line from the summary's view, or a
//! disagreement between the two formats).

use std::collections::HashSet;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::sync::OnceLock;

const P0: u64 = 0xa076_1d64_78bd_642f;
const P1: u64 = 0xe703_7ed1_a0b4_28db;

fn mix(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    (product as u64) ^ ((product >> 64) as u64)
}

/// The process's start and multiplier; the multiplier is odd, so never zero.
fn secret() -> (u64, u64) {
    static SECRET: OnceLock<(u64, u64)> = OnceLock::new();
    *SECRET.get_or_init(|| {
        let random = std::collections::hash_map::RandomState::new();
        (random.hash_one(P0), random.hash_one(P1) | 1)
    })
}

pub(super) struct KeyHasher {
    state: u64,
    multiplier: u64,
}

impl Default for KeyHasher {
    fn default() -> Self {
        let (state, multiplier) = secret();
        KeyHasher { state, multiplier }
    }
}

impl KeyHasher {
    fn step(&mut self, word: u64) {
        self.state = mix(self.state ^ word, self.multiplier);
    }

    fn pair(&mut self, a: u64, b: u64) {
        self.state = mix(self.state ^ a, self.multiplier ^ b);
    }
}

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        // The length goes in with the first word: texts that only move a boundary between two
        // fields differ in it.
        self.state ^= (bytes.len() as u64).wrapping_mul(P0);
        if bytes.is_empty() {
            self.step(P1);
            return;
        }
        // 16 bytes a multiply, both halves mixed in (as wyhash does): a line's keys hash
        // ~100 bytes of ids and names, and the multiplies in a row were the cost.
        let word = |bytes: &[u8]| {
            let mut word = [0u8; 8];
            word.copy_from_slice(bytes);
            u64::from_le_bytes(word)
        };
        let mut chunks = bytes.chunks_exact(16);
        for chunk in &mut chunks {
            self.pair(word(&chunk[..8]), word(&chunk[8..]));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut padded = [0u8; 16];
            padded[..rest.len()].copy_from_slice(rest);
            self.pair(word(&padded[..8]), word(&padded[8..]));
        }
    }

    fn write_u8(&mut self, byte: u8) {
        // Folded in without a multiply: the next step, or the finish, mixes it. A rotation keeps
        // up to eight bytes in a row apart (a `str`'s end marker, a date's parts).
        self.state = self.state.rotate_left(8) ^ u64::from(byte);
    }

    fn write_u64(&mut self, value: u64) {
        self.step(value);
    }

    fn finish(&self) -> u64 {
        mix(self.state ^ P1, self.multiplier)
    }
}

/// A key as 8 bytes.
pub(super) fn key_hash(key: impl Hash) -> u64 {
    let mut hasher = KeyHasher::default();
    key.hash(&mut hasher);
    hasher.finish()
}

/// Hashes that are keys already: a set of them needs no second hash.
#[derive(Default)]
pub(super) struct AlreadyHashed(u64);

impl Hasher for AlreadyHashed {
    fn write(&mut self, bytes: &[u8]) {
        // Only `u64`s go in these sets; anything else is folded in all the same.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A set of [`key_hash`]es.
pub(super) type Hashes = HashSet<u64, BuildHasherDefault<AlreadyHashed>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_hash_apart_and_alike() {
        let a = key_hash(("tenant", "pw_base_storage", "", "2026-10-01"));
        assert_eq!(a, key_hash(("tenant", "pw_base_storage", "", "2026-10-01")));
        // Moving text between fields is another key.
        assert_ne!(a, key_hash(("tenan", "tpw_base_storage", "", "2026-10-01")));
        let mut seen = Hashes::default();
        for i in 0..200_000u32 {
            assert!(seen.insert(key_hash((format!("c{i}"), "pw_padding"))));
        }
        assert!(!seen.insert(key_hash(("c7".to_owned(), "pw_padding"))));
    }
}
