//! all-MiniLM-L6-v2 in candle (feature `candle`).

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config as BertConfig};
use tokenizers::Tokenizer;

use super::{load_tokenizer, model_err, need, EmbedError, Embedder, MINILM};

/// all-MiniLM-L6-v2: 6-layer BERT, 384-d, mean pooling over the attention
/// mask, L2 normalisation (as sentence-transformers does).
pub struct MiniLm {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
}

impl MiniLm {
    /// Load from a directory with `config.json`, `tokenizer.json` and
    /// `model.safetensors`.
    pub fn load(dir: &Path) -> Result<MiniLm, EmbedError> {
        let need = |f| need(dir, f);
        let config: BertConfig = serde_json::from_str(
            &std::fs::read_to_string(need("config.json")?).map_err(model_err)?,
        )
        .map_err(model_err)?;
        let tokenizer = load_tokenizer(dir)?;
        let device = Device::Cpu;
        let weights = std::fs::read(need("model.safetensors")?).map_err(model_err)?;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &device)
            .map_err(model_err)?;
        let model = BertModel::load(vb, &config).map_err(model_err)?;
        Ok(MiniLm {
            model,
            tokenizer,
            device,
        })
    }

    fn forward(&self, texts: &[&str]) -> candle_core::Result<Vec<Vec<f32>>> {
        let enc = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        let b = enc.len();
        let len = enc.first().map_or(0, |e| e.get_ids().len());
        let flat = |f: &dyn Fn(&tokenizers::Encoding) -> &[u32]| -> Vec<u32> {
            enc.iter().flat_map(|e| f(e).to_vec()).collect()
        };
        let ids = Tensor::from_vec(flat(&|e| e.get_ids()), (b, len), &self.device)?;
        let types = Tensor::from_vec(flat(&|e| e.get_type_ids()), (b, len), &self.device)?;
        let mask = Tensor::from_vec(flat(&|e| e.get_attention_mask()), (b, len), &self.device)?;
        let hidden = self.model.forward(&ids, &types, Some(&mask))?; // (b, len, 384)
        let maskf = mask.to_dtype(DType::F32)?.unsqueeze(2)?; // (b, len, 1)
        let summed = hidden.broadcast_mul(&maskf)?.sum(1)?; // (b, 384)
        let counts = maskf.sum(1)?.clamp(1e-9, f64::MAX)?; // (b, 1)
        let mean = summed.broadcast_div(&counts)?;
        let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
        mean.broadcast_div(&norm)?.to_vec2::<f32>()
    }
}

impl Embedder for MiniLm {
    fn dim(&self) -> usize {
        384
    }
    fn name(&self) -> &str {
        MINILM
    }
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        self.forward(texts).map_err(model_err)
    }
}
