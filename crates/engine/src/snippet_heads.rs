//! [`Heads`]: which ASCII words the snippet marker looks up.

/// The ASCII words that may match, by their first letters. A word matches
/// a term (an exact word, a typed prefix, a stem) only if it begins with
/// the term's first three letters, or its stem does; a term of one or two
/// letters lets every word beginning with it through. English Snowball
/// stems of three letters or more begin with their word's first three
/// letters except where the third is changed: `y` -> `i` (`flies`,
/// `flying` -> `fli`; `skies` -> `sky` the other way), an `e` added after
/// `-ing`/`-ed` goes (`using` -> `use`), and `dying`, `lying`, `tying`
/// (-> `die`, `lie`, `tie`); those first letters are added for such stems
/// (checked against every one of the 108,451 distinct ASCII words of the
/// 2022 corpus with the analyzer's stemmer: none left out). A term beyond
/// ASCII adds nothing (an ASCII word's stem is ASCII).
#[derive(Clone, Default)]
pub(super) struct Heads {
    /// Bit `a * 128 + b`: the two-letter terms `ab`.
    pairs: Vec<u64>,
    /// Bit `a`: the one-letter term `a`.
    singles: u128,
    /// The first three letters of longer terms (and of the words whose
    /// stems they may be).
    triples: Vec<[u8; 3]>,
    /// Bit `a`: a term begins with `a`.
    leads: u128,
}

impl Heads {
    pub(super) fn add(&mut self, term: &str) {
        let b = term.as_bytes();
        if !b.first().is_some_and(u8::is_ascii) {
            return;
        }
        match b {
            [a] => self.singles |= 1 << *a,
            [a, c] if c.is_ascii() => {
                if self.pairs.is_empty() {
                    self.pairs = vec![0; 128 * 128 / 64];
                }
                let k = *a as usize * 128 + *c as usize;
                self.pairs[k / 64] |= 1 << (k % 64);
            }
            [a, c, d, ..] if c.is_ascii() && d.is_ascii() => {
                let (a, c, d) = (*a, *c, *d);
                self.triples.push([a, c, d]);
                match d {
                    b'i' => self.triples.push([a, c, b'y']),
                    b'y' => self.triples.push([a, c, b'i']),
                    b'e' if b.len() == 3 => self.triples.push([a, c, b'i']),
                    _ => {}
                }
                if matches!(b, b"die" | b"lie" | b"tie") {
                    self.triples.push([a, b'y', b'i']);
                }
            }
            _ => return,
        }
        self.leads |= 1 << b[0];
    }

    /// Whether an ASCII word beginning with `a` (any case) may match: what
    /// [`Heads::may_begin`] answers for some following letters.
    pub(super) fn may_begin_with(&self, a: u8) -> bool {
        a.is_ascii() && self.leads & (1 << a.to_ascii_lowercase()) != 0
    }

    /// Whether an ASCII word beginning `a`, `b`, `c` (any case; a byte
    /// that is not a letter or digit where the word is shorter) may match.
    pub(super) fn may_begin(&self, a: u8, b: u8, c: u8) -> bool {
        let a = a.to_ascii_lowercase();
        if !a.is_ascii() {
            return false;
        }
        if self.singles & (1 << a) != 0 {
            return true;
        }
        if !b.is_ascii_alphanumeric() {
            return false;
        }
        let b = b.to_ascii_lowercase();
        let k = a as usize * 128 + b as usize;
        if self
            .pairs
            .get(k / 64)
            .is_some_and(|w| w & (1 << (k % 64)) != 0)
        {
            return true;
        }
        c.is_ascii_alphanumeric() && self.triples.contains(&[a, b, c.to_ascii_lowercase()])
    }
}
