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

/// Distinct keys with their values, in first-seen order, at most `CAP` of them (what one message
/// may add): a new key past that is counted and left out, so neither the list nor the table
/// grows past it. Reads as a slice of `(key, value)`.
#[derive(Clone, Debug)]
pub(crate) struct Distinct<K, V, const CAP: usize = { usize::MAX }> {
    entries: Vec<(K, V)>,
    /// Each key's place in `entries` once there are more than [`SCAN`]; empty (and never
    /// allocated) before.
    index: HashMap<K, usize>,
    /// New keys met past `CAP`.
    left_out: usize,
}

impl<K, V, const CAP: usize> Default for Distinct<K, V, CAP> {
    fn default() -> Self {
        Distinct { entries: Vec::new(), index: HashMap::new(), left_out: 0 }
    }
}

impl<K, V, const CAP: usize> Distinct<K, V, CAP> {
    /// New keys met past `CAP` and left out (a key left out twice counts twice).
    pub(crate) fn left_out(&self) -> usize {
        self.left_out
    }
}

impl<K: Eq + Hash + Clone, V, const CAP: usize> Distinct<K, V, CAP> {
    /// Sets `key` to `value`; a key seen before keeps its place. Whether the key is new (a new
    /// key past `CAP` is not kept, and counted).
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
        if self.entries.len() >= CAP {
            self.left_out += 1;
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
}

impl<K, V, const CAP: usize> Deref for Distinct<K, V, CAP> {
    type Target = [(K, V)];

    fn deref(&self) -> &[(K, V)] {
        &self.entries
    }
}

impl<K, V, const CAP: usize> IntoIterator for Distinct<K, V, CAP> {
    type Item = (K, V);
    type IntoIter = std::vec::IntoIter<(K, V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<'a, K, V, const CAP: usize> IntoIterator for &'a Distinct<K, V, CAP> {
    type Item = &'a (K, V);
    type IntoIter = std::slice::Iter<'a, (K, V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter()
    }
}

impl<K: PartialEq, V: PartialEq, const CAP: usize> PartialEq<Vec<(K, V)>> for Distinct<K, V, CAP> {
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
            let mut d: Distinct<usize, usize> = Distinct::default();
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
    fn new_keys_past_the_cap_are_counted_and_left_out() {
        let mut d: Distinct<u32, u32, 20> = Distinct::default();
        for i in 0..30 {
            d.insert(i, 0);
        }
        d.insert(3, 7);
        d.insert(25, 7);
        assert_eq!((d.len(), d.left_out(), d.index.len()), (20, 11, 20));
        assert_eq!(d.get(3), Some(&(3, 7)));
    }

    #[test]
    fn many_keys_take_linear_work() {
        // Counted, not timed: past SCAN, no insert compares against more than its own bucket.
        let mut d: Distinct<u32, ()> = Distinct::default();
        for i in 0..100_000u32 {
            d.insert(i, ());
        }
        assert_eq!(d.len(), 100_000);
        assert_eq!(d.index.len(), 100_000);
    }
}
