//! The HNSW graph's dot product, on the widest SIMD the CPU has (AVX2 and
//! FMA, or AVX-512, picked at run time by `pulp`; SSE2 otherwise), with
//! several accumulators so the additions do not wait on each other.
//!
//! It sums in another order than [`crate::embedder::dot`] (and fuses
//! multiplies and adds), so the two differ in the last bits: the graph
//! (building and walking it) uses this one, every similarity a caller sees
//! is [`crate::embedder::dot`]'s.

use pulp::{Arch, Simd, WithSimd};

/// The dot product of two equally long vectors (the graph's distance).
pub fn fast_dot(a: &[f32], b: &[f32]) -> f32 {
    dispatch(a, b)
}

/// Two equally long vectors whose dot product `pulp` computes on the
/// CPU's widest SIMD ([`WithSimd`], one implementation per element type).
struct Dot<'a, T> {
    a: &'a [T],
    b: &'a [T],
}

/// `Dot { a, b }` on the SIMD picked at run time.
fn dispatch<'a, T>(a: &'a [T], b: &'a [T]) -> <Dot<'a, T> as WithSimd>::Output
where
    Dot<'a, T>: WithSimd,
{
    debug_assert_eq!(a.len(), b.len());
    Arch::new().dispatch(Dot { a, b })
}

impl WithSimd for Dot<'_, f32> {
    type Output = f32;

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) -> f32 {
        let (a, a_tail) = S::as_simd_f32s(self.a);
        let (b, b_tail) = S::as_simd_f32s(self.b);
        let zero = simd.splat_f32s(0.0);
        let mut acc = [zero; 4];
        let (a4, a_rest) = a.split_at(a.len() / 4 * 4);
        let (b4, b_rest) = b.split_at(a4.len());
        for (x, y) in a4.chunks_exact(4).zip(b4.chunks_exact(4)) {
            for i in 0..4 {
                acc[i] = simd.mul_add_e_f32s(x[i], y[i], acc[i]);
            }
        }
        for (x, y) in a_rest.iter().zip(b_rest) {
            acc[0] = simd.mul_add_e_f32s(*x, *y, acc[0]);
        }
        let sum = simd.add_f32s(simd.add_f32s(acc[0], acc[1]), simd.add_f32s(acc[2], acc[3]));
        let tail: f32 = a_tail.iter().zip(b_tail).map(|(x, y)| x * y).sum();
        simd.reduce_sum_f32s(sum) + tail
    }
}

/// Asks the CPU to bring a vector into its caches ahead of use, one
/// prefetch per 64-byte line (SSE's `prefetcht0`, through `pulp`'s safe
/// wrapper: a prefetch reads nothing and cannot fault). Where SSE is
/// missing (not x86-64) it does nothing. It changes no result, only when
/// the loads wait for memory.
#[derive(Clone, Copy, Debug)]
pub struct Prefetch {
    #[cfg(target_arch = "x86_64")]
    sse: Option<pulp::core_arch::x86::Sse>,
}

impl Prefetch {
    /// The CPU's prefetch, if it has one.
    pub fn new() -> Prefetch {
        Prefetch {
            #[cfg(target_arch = "x86_64")]
            sse: pulp::core_arch::x86::Sse::try_new(),
        }
    }

    /// Prefetch every line `v` spans (every 16th float and the last: a
    /// vector need not start on a line).
    #[inline(always)]
    pub fn vector(self, v: &[f32]) {
        #[cfg(target_arch = "x86_64")]
        if let Some(sse) = self.sse {
            use std::arch::x86_64::_MM_HINT_T0;
            for x in v.iter().step_by(16).chain(v.last()) {
                sse._mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(x).cast::<i8>());
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = v;
    }

    /// Prefetch every line an int8 vector spans.
    #[inline(always)]
    pub fn bytes(self, v: &[i8]) {
        #[cfg(target_arch = "x86_64")]
        if let Some(sse) = self.sse {
            use std::arch::x86_64::_MM_HINT_T0;
            for x in v.iter().step_by(64).chain(v.last()) {
                sse._mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(x));
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = v;
    }
}

impl Default for Prefetch {
    fn default() -> Self {
        Prefetch::new()
    }
}

/// The dot product of two equally long int8 vectors, summed exactly in
/// i32 (384 products of at most 127 * 127 cannot overflow it).
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    dispatch(a, b)
}

impl WithSimd for Dot<'_, i8> {
    type Output = i32;

    /// A plain loop: compiled inside `dispatch` with the CPU's features
    /// enabled, it vectorises to widening multiply-adds.
    #[inline(always)]
    fn with_simd<S: Simd>(self, _simd: S) -> i32 {
        self.a
            .iter()
            .zip(self.b)
            .map(|(&x, &y)| i32::from(x) * i32::from(y))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Agrees with a plain sum in f64 at every length (SIMD blocks, the
    /// accumulators' remainder, the scalar tail).
    #[test]
    fn agrees_with_a_plain_sum() {
        let mut s = 1u64;
        let mut next = move || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        };
        for n in [0, 1, 3, 7, 8, 15, 16, 31, 33, 64, 100, 383, 384, 385, 1000] {
            let a: Vec<f32> = (0..n).map(|_| next()).collect();
            let b: Vec<f32> = (0..n).map(|_| next()).collect();
            let plain: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
            let got = fast_dot(&a, &b) as f64;
            assert!(
                (got - plain).abs() < 1e-5 * (1.0 + n as f64),
                "n = {n}: {got} vs {plain}"
            );
        }
    }

    /// Equals the sum in i64 exactly, extremes included.
    #[test]
    fn int8_dot_is_exact() {
        let mut s = 7u64;
        for n in [0, 1, 31, 32, 33, 383, 384, 1000] {
            let mut next = || {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (s >> 56) as u8 as i8
            };
            let mut a: Vec<i8> = (0..n).map(|_| next()).collect();
            let b: Vec<i8> = (0..n).map(|_| next()).collect();
            if n > 0 {
                a[0] = i8::MIN;
            }
            let plain: i64 = a.iter().zip(&b).map(|(x, y)| *x as i64 * *y as i64).sum();
            assert_eq!(dot_i8(&a, &b) as i64, plain, "n = {n}");
        }
    }
}
