//! Reading what [`VectorIndex::save`] wrote: `vectors.bin` (two threads
//! filling the rows) and, for an index saved before the flat graph,
//! hnsw_rs's dump.

use super::*;

impl VectorIndex {
    /// Read vectors.bin: its rows and the number of rows its graph holds.
    pub(super) fn read_vectors_file(&self) -> Result<Option<(Rows, usize)>, VectorError> {
        let path = self.dir.join("vectors.bin");
        let Ok(f) = File::open(&path) else {
            return Ok(None);
        };
        let mut rd = BufReader::with_capacity(1 << 20, f);
        let get4 = |rd: &mut BufReader<File>| -> Result<u32, VectorError> {
            let mut b = [0u8; 4];
            rd.read_exact(&mut b).map_err(|e| io_err(&path, e))?;
            Ok(u32::from_le_bytes(b))
        };
        let mut magic = [0u8; 4];
        rd.read_exact(&mut magic).map_err(|e| io_err(&path, e))?;
        if &magic != MAGIC {
            return Err(io_err(&path, "not a hubsearch vector file"));
        }
        let dim = get4(&mut rd)? as usize;
        let name_len = get4(&mut rd)? as usize;
        let mut name = vec![0u8; name_len.min(1024)];
        rd.read_exact(&mut name).map_err(|e| io_err(&path, e))?;
        let name = String::from_utf8_lossy(&name).into_owned();
        if name != self.embedder || dim != self.dim {
            return Err(VectorError::WrongEmbedder {
                path,
                found: format!("{name} ({dim}-d)"),
                want: format!("{} ({}-d)", self.embedder, self.dim),
            });
        }
        let get8 = |rd: &mut BufReader<File>| -> Result<u64, VectorError> {
            let mut b = [0u8; 8];
            rd.read_exact(&mut b).map_err(|e| io_err(&path, e))?;
            Ok(u64::from_le_bytes(b))
        };
        let n = get8(&mut rd)? as usize;
        let graph_rows = (get8(&mut rd)? as usize).min(n);
        // One row: key, text hash, alive, then the vector.
        let record = 17 + dim * 4;
        let header = 4 + 4 + 4 + name.len() as u64 + 8 + 8;
        let size = rd.get_ref().metadata().map_or(0, |m| m.len());
        let fits = (size.saturating_sub(header) / record as u64) as usize;
        if fits < n {
            return Err(io_err(&path, "the file ends before its last row"));
        }
        drop(rd);
        // Two readers fill the two halves of the rows at once: writing the
        // vectors is what first touches (and has the kernel zero) their
        // pages, most of opening a large index.
        let mut vecs = HugeVec::<f32>::zeroed(n * dim);
        let half = n / 2;
        let (low, high) = vecs.split_at_mut(half * dim);
        let read_part = |first: usize, out: &mut [f32]| -> Result<RowMeta, VectorError> {
            let mut f = File::open(&path).map_err(|e| io_err(&path, e))?;
            f.seek(SeekFrom::Start(header + (first * record) as u64))
                .map_err(|e| io_err(&path, e))?;
            let mut rd = BufReader::with_capacity(1 << 20, f);
            let mut buf = vec![0u8; record];
            let mut meta = RowMeta::default();
            for v in out.chunks_exact_mut(dim.max(1)) {
                rd.read_exact(&mut buf).map_err(|e| io_err(&path, e))?;
                let u64_at =
                    |i: usize| u64::from_le_bytes(buf[i..i + 8].try_into().expect("8 bytes"));
                meta.id_keys.push(ModelKey(u64_at(0)));
                meta.text_hashes.push(u64_at(8));
                meta.alive.push(buf[16] == 1);
                for (x, c) in v.iter_mut().zip(buf[17..].chunks_exact(4)) {
                    *x = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                }
            }
            Ok(meta)
        };
        let (a, b) = std::thread::scope(|s| {
            let upper = s.spawn(|| read_part(half, high));
            let lower = read_part(0, low);
            (lower, upper.join())
        });
        let mut rows = Rows {
            vecs,
            ..Rows::default()
        };
        for part in [a?, b.map_err(|_| io_err(&path, "a reader panicked"))??] {
            rows.id_keys.extend(part.id_keys);
            rows.text_hashes.extend(part.text_hashes);
            rows.alive.extend(part.alive);
        }
        if rows.id_keys.len() != n {
            return Err(io_err(&path, "a row has no vector (dimension 0)"));
        }
        for (row, (&key, &alive)) in rows.id_keys.iter().zip(&rows.alive).enumerate() {
            if alive {
                rows.by_id.insert(key, row);
            }
        }
        Ok(Some((rows, graph_rows)))
    }

    /// Reload hnsw_rs's dump (an index saved before graphs were built by
    /// build.rs) if it holds exactly `rows` rows.
    pub(super) fn load_graph(&self, rows: usize) -> Option<Graph> {
        // `hnsw.old`: a save stopped between its two renames.
        let dir = ["hnsw", "hnsw.old"]
            .iter()
            .map(|d| self.dir.join(d))
            .find(|d| d.join("graph.hnsw.graph").exists())?;
        // hnsw_rs ties the graph's lifetime to its loader; the loader is
        // small, so it is leaked on purpose (once, at start-up of an index
        // saved before flat graphs).
        let io: &'static mut HnswIo = Box::leak(Box::new(HnswIo::new(&dir, "graph")));
        match io.load_hnsw::<f32, UnitDot>() {
            Ok(g) if g.get_nb_point() == rows => Some(g),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(
                    "cannot reload the HNSW graph in {}: {e}; rebuilding",
                    dir.display()
                );
                None
            }
        }
    }
}
