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

/// 8 bytes as a word; `bytes` holds 8.
fn word(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(word)
}

/// 1 to 16 bytes as two words that hold every one of them (some twice, where reads overlap),
/// read in place rather than copied into a zeroed block: with the length, which the caller
/// mixes in, two texts of one length give the same words only when they are the same.
fn short_words(bytes: &[u8]) -> (u64, u64) {
    let len = bytes.len();
    let word32 = |at: usize| {
        let mut word = [0u8; 4];
        word.copy_from_slice(&bytes[at..at + 4]);
        u64::from(u32::from_le_bytes(word))
    };
    match len {
        8.. => (word(bytes), word(&bytes[len - 8..])),
        4.. => (word32(0), word32(len - 4)),
        1.. => (
            u64::from(bytes[0]) << 16 | u64::from(bytes[len / 2]) << 8 | u64::from(bytes[len - 1]),
            0,
        ),
        // As a step of `P1`.
        0 => (P1, 0),
    }
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
        // 16 bytes a multiply, both halves mixed in (as wyhash does): a line's keys hash
        // ~100 bytes of ids and names, and the multiplies in a row were the cost.
        let len = bytes.len();
        if len <= 16 {
            let (a, b) = short_words(bytes);
            self.pair(a, b);
            return;
        }
        let mut chunks = bytes.chunks_exact(16);
        for chunk in &mut chunks {
            self.pair(word(&chunk[..8]), word(&chunk[8..]));
        }
        if !chunks.remainder().is_empty() {
            // The last 16 bytes, overlapping some already mixed in (the length tells texts
            // apart): copying the rest into a zeroed block cost a memset, a memcpy and a load
            // that waited on them, for nearly every text of every line.
            let tail = &bytes[len - 16..];
            self.pair(word(&tail[..8]), word(&tail[8..]));
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

    #[test]
    fn every_byte_of_a_text_of_any_length_counts() {
        // The short and overlapping reads must not skip a byte, at any length and place.
        for len in 0..=48usize {
            let text: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let mut seen = Hashes::default();
            assert!(seen.insert(key_hash(&text[..])));
            for at in 0..len {
                let mut changed = text.clone();
                changed[at] ^= 0x20;
                assert!(
                    seen.insert(key_hash(&changed[..])),
                    "length {len}, byte {at}"
                );
            }
            // A longer text that starts the same, or one byte shorter, is another key.
            assert!(seen.insert(key_hash(&[&text[..], &b"\0"[..]].concat()[..])));
            if len > 0 {
                assert!(seen.insert(key_hash(&text[..len - 1])), "length {len}");
            }
        }
    }
}
