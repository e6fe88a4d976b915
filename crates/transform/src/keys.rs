//! Each key once, in the order first seen, the last value winning: in time linear in the number
//! of keys. Most lines have a handful, which a scan finds fastest; a line can carry many
//! thousands (an app's JSON, a made-up router line), so past [`SCAN`] keys a hash table finds
//! them. Its hasher is std's randomly keyed SipHash: the keys come from outside, and a fixed
//! hash would let a sender choose keys that collide.

use std::collections::HashMap;
use std::hash::Hash;
use std::ops::Deref;

/// Up to this many keys, a lookup scans; past it, it hashes. Measured with the transform bench:
/// below about 16 short keys a scan beats hashing.
const SCAN: usize = 16;

/// Distinct keys with their values, in first-seen order. Reads as a slice of `(key, value)`.
#[derive(Clone, Debug)]
pub(crate) struct Distinct<K, V> {
    entries: Vec<(K, V)>,
    /// Each key's place in `entries` once there are more than [`SCAN`]; empty (and never
    /// allocated) before.
    index: HashMap<K, usize>,
}

impl<K, V> Default for Distinct<K, V> {
    fn default() -> Self {
        Distinct { entries: Vec::new(), index: HashMap::new() }
    }
}

impl<K: Eq + Hash + Clone, V> Distinct<K, V> {
    /// Sets `key` to `value`; a key seen before keeps its place. Whether the key is new.
    pub(crate) fn insert(&mut self, key: K, value: V) -> bool {
        let found = if self.index.is_empty() {
            self.entries.iter().position(|(k, _)| *k == key)
        } else {
            self.index.get(&key).copied()
        };
        if let Some(slot) = found.and_then(|i| self.entries.get_mut(i)) {
            slot.1 = value;
            return false;
        }
        if self.entries.len() >= SCAN {
            if self.index.is_empty() {
                self.index.extend(self.entries.iter().enumerate().map(|(i, (k, _))| (k.clone(), i)));
            }
            self.index.insert(key.clone(), self.entries.len());
        }
        self.entries.push((key, value));
        true
    }

    pub(crate) fn into_vec(self) -> Vec<(K, V)> {
        self.entries
    }
}

impl<K, V> Deref for Distinct<K, V> {
    type Target = [(K, V)];

    fn deref(&self) -> &[(K, V)] {
        &self.entries
    }
}

impl<'a, K, V> IntoIterator for &'a Distinct<K, V> {
    type Item = &'a (K, V);
    type IntoIter = std::slice::Iter<'a, (K, V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter()
    }
}

impl<K: PartialEq, V: PartialEq> PartialEq<Vec<(K, V)>> for Distinct<K, V> {
    fn eq(&self, other: &Vec<(K, V)>) -> bool {
        self.entries == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_value_wins_and_the_first_place_stays() {
        for n in [3, SCAN, SCAN + 1, 10 * SCAN] {
            let mut d = Distinct::default();
            for i in 0..n {
                assert!(d.insert(i, 0));
            }
            for i in (0..n).rev() {
                assert!(!d.insert(i, i + 1));
            }
            let want: Vec<(usize, usize)> = (0..n).map(|i| (i, i + 1)).collect();
            assert_eq!(d, want, "{n} keys");
        }
    }

    #[test]
    fn many_keys_take_linear_work() {
        // Counted, not timed: past SCAN, no insert compares against more than its own bucket.
        let mut d = Distinct::default();
        for i in 0..100_000u32 {
            d.insert(i, ());
        }
        assert_eq!(d.len(), 100_000);
        assert_eq!(d.index.len(), 100_000);
    }
}
