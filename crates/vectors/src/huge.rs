//! [`HugeVec`]: a growable array in anonymous memory the kernel is asked to
//! back with transparent huge pages (`madvise(MADV_HUGEPAGE)`), for the
//! arrays a search reads at random: the card vectors and the graph's
//! neighbour lists, and the visited stamps (docs/embeddings.md, "Huge pages").
//!
//! A graph search reads a few thousand vectors scattered over the whole
//! array. With 4 KiB pages nearly every read of a large index also misses
//! the CPU's TLB (its 3,072 second-level entries map 12 MiB; a million
//! cards' vectors are 1.5 GiB) and waits for a page walk; 2 MiB pages map
//! 6 GiB with the same entries. Most Linux systems ship transparent huge
//! pages in `madvise` mode, where only memory that asks gets them, and a
//! `Vec` from the allocator cannot ask without `unsafe` (which this
//! workspace forbids), so the memory is mapped here (memmap2) and advised.
//! Where the advice is refused (huge pages `never`, or another OS) it is
//! ignored: the array works the same, on small pages.

use std::ops::{Deref, DerefMut};

use bytemuck::Pod;
use memmap2::MmapMut;

/// Below this many bytes an array stays on the heap: a huge page is 2 MiB,
/// and a mapping per small array would cost more than it saves.
const MAPPED_FROM: usize = 4 << 20;

/// A `Vec<T>`-like array: on the heap while small, in an advised anonymous
/// mapping once its capacity reaches [`MAPPED_FROM`] bytes.
pub(crate) struct HugeVec<T: Pod> {
    store: Store<T>,
    len: usize,
}

enum Store<T> {
    Heap(Vec<T>),
    Mapped { map: MmapMut, cap: usize },
}

impl<T: Pod> Default for HugeVec<T> {
    fn default() -> Self {
        HugeVec {
            store: Store::Heap(Vec::new()),
            len: 0,
        }
    }
}

impl<T: Pod> HugeVec<T> {
    /// Empty, with room for `n` items.
    pub(crate) fn with_capacity(n: usize) -> Self {
        let mut h = HugeVec::default();
        h.reserve(n);
        h
    }

    /// Room for at least `additional` more items without moving.
    pub(crate) fn reserve(&mut self, additional: usize) {
        let need = self.len.saturating_add(additional);
        let cap = match &self.store {
            Store::Heap(v) => v.capacity(),
            Store::Mapped { cap, .. } => *cap,
        };
        if need <= cap {
            return;
        }
        let bytes = need.saturating_mul(size_of::<T>().max(1));
        if bytes < MAPPED_FROM {
            if let Store::Heap(v) = &mut self.store {
                v.reserve(additional);
                return;
            }
        }
        // Address space for as many items as the machine has memory: a
        // mapping costs only the pages written, so the array then grows in
        // place, where moving it would hold the old and the new copy at
        // once (a `Vec` moves by `mremap`, without the copy; that call is
        // `unsafe` in memmap2). Failing that, half again, as a `Vec` grows.
        let roomy = machine_memory() / size_of::<T>().max(1);
        let mapped = Self::map(need.max(roomy))
            .map(|m| (m, need.max(roomy)))
            .or_else(|| {
                let cap = need.max(cap.saturating_add(cap / 2));
                Self::map(cap).map(|m| (m, cap))
            });
        match mapped {
            Some((mut map, new_cap)) => {
                let old: &[T] = self;
                let n = std::mem::size_of_val(old);
                map[..n].copy_from_slice(bytemuck::cast_slice(old));
                self.store = Store::Mapped { map, cap: new_cap };
            }
            // No anonymous mapping here (another OS, or a failed mmap):
            // the heap.
            None => match &mut self.store {
                Store::Heap(v) => v.reserve(additional),
                Store::Mapped { .. } => {
                    let mut v = Vec::with_capacity(need);
                    v.extend_from_slice(self);
                    self.store = Store::Heap(v);
                }
            },
        }
    }

    /// A zeroed mapping of `cap` items, advised to use huge pages; no swap
    /// is reserved for it (only its written pages are memory).
    fn map(cap: usize) -> Option<MmapMut> {
        let bytes = cap.checked_mul(size_of::<T>())?.max(1);
        let map = memmap2::MmapOptions::new()
            .len(bytes)
            .no_reserve_swap()
            .map_anon()
            .ok()?;
        #[cfg(target_os = "linux")]
        {
            // A hint: refused when huge pages are off, and then ignored.
            let _ = map.advise(memmap2::Advice::HugePage);
        }
        Some(map)
    }

    pub(crate) fn push(&mut self, x: T) {
        self.extend_from_slice(std::slice::from_ref(&x));
    }

    pub(crate) fn extend_from_slice(&mut self, xs: &[T]) {
        self.reserve(xs.len());
        match &mut self.store {
            Store::Heap(v) => v.extend_from_slice(xs),
            Store::Mapped { map, .. } => {
                let at = self.len * size_of::<T>();
                let bytes: &[u8] = bytemuck::cast_slice(xs);
                map[at..at + bytes.len()].copy_from_slice(bytes);
            }
        }
        self.len += xs.len();
    }

    /// `n` zeroed items, not yet written: a mapping is zero already, so
    /// its pages are first touched (and zeroed by the kernel) by whichever
    /// thread writes them; threads filling parts of it share that work.
    pub(crate) fn zeroed(n: usize) -> Self {
        let mut h = HugeVec::with_capacity(n);
        match &mut h.store {
            Store::Heap(v) => v.resize(n, T::zeroed()),
            Store::Mapped { .. } => {}
        }
        h.len = n;
        h
    }

    /// Grow to `n` items, the new ones `value` (never shrinks).
    pub(crate) fn resize(&mut self, n: usize, value: T) {
        if n <= self.len {
            return;
        }
        self.reserve(n - self.len);
        let old = self.len;
        match &mut self.store {
            Store::Heap(v) => v.resize(n, value),
            Store::Mapped { .. } => {
                self.len = n;
                self[old..].fill(value);
            }
        }
        self.len = n;
    }

    pub(crate) fn extend(&mut self, xs: impl IntoIterator<Item = T>) {
        // In chunks: one copy per chunk, not per item.
        let mut chunk: Vec<T> = Vec::with_capacity(1024);
        for x in xs {
            chunk.push(x);
            if chunk.len() == chunk.capacity() {
                self.extend_from_slice(&chunk);
                chunk.clear();
            }
        }
        self.extend_from_slice(&chunk);
    }
}

/// The machine's memory in bytes (`MemTotal` of /proc/meminfo; 16 GiB
/// where it cannot be read).
fn machine_memory() -> usize {
    static MEMORY: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *MEMORY.get_or_init(|| {
        std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                let line = m.lines().find(|l| l.starts_with("MemTotal:"))?;
                let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
                kib.checked_mul(1024)
            })
            .unwrap_or(16 << 30)
    })
}

impl<T: Pod> From<Vec<T>> for HugeVec<T> {
    /// The items of `v`, mapped when large (copied once).
    fn from(v: Vec<T>) -> Self {
        let mut h = HugeVec::default();
        if std::mem::size_of_val(v.as_slice()) < MAPPED_FROM {
            h.len = v.len();
            h.store = Store::Heap(v);
        } else {
            h.extend_from_slice(&v);
        }
        h
    }
}

impl<T: Pod> Deref for HugeVec<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        match &self.store {
            Store::Heap(v) => v,
            Store::Mapped { map, .. } => bytemuck::cast_slice(&map[..self.len * size_of::<T>()]),
        }
    }
}

impl<T: Pod> DerefMut for HugeVec<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        match &mut self.store {
            Store::Heap(v) => v,
            Store::Mapped { map, .. } => {
                bytemuck::cast_slice_mut(&mut map[..self.len * size_of::<T>()])
            }
        }
    }
}

impl<T: Pod + std::fmt::Debug> std::fmt::Debug for HugeVec<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T: Pod> Clone for HugeVec<T> {
    fn clone(&self) -> Self {
        let mut h = HugeVec::default();
        h.extend_from_slice(self);
        h
    }
}

impl<T: Pod + PartialEq> PartialEq for HugeVec<T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pushes across the heap-to-mapping switch keep every item, in order,
    /// as a `Vec` does.
    #[test]
    fn a_huge_vec_holds_what_a_vec_holds() {
        let mut h: HugeVec<u32> = HugeVec::default();
        let mut v: Vec<u32> = Vec::new();
        let mut x = 1u32;
        // 3 M items of 4 bytes: past MAPPED_FROM (the move from the heap).
        for i in 0..3_000_000u32 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            if i % 7 == 0 {
                h.extend_from_slice(&[x, i]);
                v.extend_from_slice(&[x, i]);
            } else {
                h.push(x);
                v.push(x);
            }
        }
        assert!(matches!(h.store, Store::Mapped { .. }));
        assert_eq!(&*h, v.as_slice());
        h[5] = 9;
        v[5] = 9;
        assert_eq!(&*h.clone(), v.as_slice());
        let big = HugeVec::from(v.clone());
        assert_eq!(&*big, v.as_slice());
        h.resize(h.len() + 2_000_000, 7);
        v.resize(v.len() + 2_000_000, 7);
        assert_eq!(&*h, v.as_slice());
        let z: HugeVec<u64> = HugeVec::zeroed(1_000_000);
        assert!(z.len() == 1_000_000 && z.iter().all(|&x| x == 0));
        let small = HugeVec::from(vec![1.5f32, 2.5]);
        assert_eq!(&*small, &[1.5, 2.5]);
    }
}
