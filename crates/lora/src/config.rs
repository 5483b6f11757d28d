//! A pretrained model's `config.json`, as Hugging Face transformers writes it.

use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};

/// The architectures this crate runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Arch {
    /// Llama (`model_type` `llama`: Llama 2 and 3, SmolLM and SmolLM2) and Qwen2 (`qwen2`:
    /// Llama's blocks with biases on the query, key and value projections).
    Llama,
    /// GPT-2 (`gpt2`): learned positions, layer norm, GELU, fused `c_attn`.
    Gpt2,
}

/// Llama 3's rotary frequency scaling (`rope_scaling` with `rope_type` `llama3`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Llama3Scaling {
    /// How much longer than the original context the model reads.
    pub factor: f64,
    /// Wavelengths beyond `original / low_freq_factor` are scaled by `factor`.
    pub low_freq_factor: f64,
    /// Wavelengths below `original / high_freq_factor` are kept.
    pub high_freq_factor: f64,
    /// The context the model was pretrained on.
    pub original_max_position_embeddings: usize,
}

/// The shape of a pretrained causal language model.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Config {
    /// The architecture.
    pub arch: Arch,
    /// Tokens in the vocabulary (rows of the embedding).
    pub vocab: usize,
    /// The width of the residual stream.
    pub hidden: usize,
    /// Transformer blocks.
    pub layers: usize,
    /// Attention heads.
    pub heads: usize,
    /// Key and value heads (fewer than `heads` with grouped-query attention).
    pub kv_heads: usize,
    /// The width of one head.
    pub head_dim: usize,
    /// The width of the feed-forward layer.
    pub intermediate: usize,
    /// The normalisation's epsilon.
    pub eps: f64,
    /// Rotary embeddings' base (Llama).
    pub rope_theta: f64,
    /// Llama 3's frequency scaling, if the model has it.
    pub rope_scaling: Option<Llama3Scaling>,
    /// The longest context.
    pub max_positions: usize,
    /// Whether the output layer is the embedding (no `lm_head.weight` of its own).
    pub tie_embeddings: bool,
    /// Whether the query, key and value projections have biases (Qwen2).
    pub qkv_bias: bool,
    /// Whether the other projections have biases (`attention_bias`, `mlp_bias`).
    pub o_bias: bool,
    /// Whether the feed-forward projections have biases.
    pub mlp_bias: bool,
}

#[derive(Deserialize)]
struct Raw {
    model_type: Option<String>,
    vocab_size: Option<usize>,
    // Llama and Qwen2.
    hidden_size: Option<usize>,
    intermediate_size: Option<usize>,
    num_hidden_layers: Option<usize>,
    num_attention_heads: Option<usize>,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    rms_norm_eps: Option<f64>,
    rope_theta: Option<f64>,
    rope_scaling: Option<serde_json::Value>,
    /// transformers 5 writes `rope_theta` and the scaling here.
    rope_parameters: Option<serde_json::Value>,
    max_position_embeddings: Option<usize>,
    tie_word_embeddings: Option<bool>,
    attention_bias: Option<bool>,
    mlp_bias: Option<bool>,
    hidden_act: Option<String>,
    use_sliding_window: Option<bool>,
    // GPT-2.
    n_embd: Option<usize>,
    n_layer: Option<usize>,
    n_head: Option<usize>,
    n_inner: Option<usize>,
    n_positions: Option<usize>,
    layer_norm_epsilon: Option<f64>,
    activation_function: Option<String>,
}

impl Config {
    /// Reads `config.json` from a model folder.
    pub fn load(dir: &Path) -> Result<Config> {
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Error::file_because(&path, "cannot read the model's config", e))?;
        Config::from_json(&text).map_err(|e| match e {
            Error::Invalid { message, .. } => Error::file(&path, message),
            other => other,
        })
    }

    /// Parses the text of a `config.json`.
    pub fn from_json(text: &str) -> Result<Config> {
        let raw: Raw = serde_json::from_str(text)
            .map_err(|e| Error::invalid("config", format!("not a model config: {e}")))?;
        let kind = raw.model_type.clone().unwrap_or_default();
        let need = |v: Option<usize>, name: &str| {
            v.filter(|&n| n > 0)
                .ok_or_else(|| Error::invalid("config", format!("{kind} config without {name}")))
        };
        let vocab = need(raw.vocab_size, "vocab_size")?;
        let config = match kind.as_str() {
            "llama" | "qwen2" => {
                if raw.use_sliding_window == Some(true) {
                    return Err(Error::invalid(
                        "config",
                        "use_sliding_window: sliding-window attention is not run here",
                    ));
                }
                let act = raw.hidden_act.as_deref().unwrap_or("silu");
                if act != "silu" {
                    return Err(Error::invalid("config", format!("hidden_act {act:?}: only silu")));
                }
                let hidden = need(raw.hidden_size, "hidden_size")?;
                let heads = need(raw.num_attention_heads, "num_attention_heads")?;
                let kv_heads = raw.num_key_value_heads.unwrap_or(heads);
                let head_dim = raw.head_dim.unwrap_or(hidden / heads);
                if kv_heads == 0 || heads % kv_heads != 0 || !head_dim.is_multiple_of(2) {
                    return Err(Error::invalid(
                        "config",
                        format!(
                            "{heads} heads, {kv_heads} key/value heads of {head_dim}: heads must be a multiple of key/value heads, of even width"
                        ),
                    ));
                }
                let bias = raw.attention_bias.unwrap_or(false);
                Config {
                    arch: Arch::Llama,
                    vocab,
                    hidden,
                    layers: need(raw.num_hidden_layers, "num_hidden_layers")?,
                    heads,
                    kv_heads,
                    head_dim,
                    intermediate: need(raw.intermediate_size, "intermediate_size")?,
                    eps: raw.rms_norm_eps.unwrap_or(1e-6),
                    rope_theta: raw
                        .rope_theta
                        .or_else(|| raw.rope_parameters.as_ref()?.get("rope_theta")?.as_f64())
                        .unwrap_or(10_000.0),
                    rope_scaling: scaling(
                        raw.rope_scaling.as_ref().or(raw.rope_parameters.as_ref()),
                    )?,
                    max_positions: raw.max_position_embeddings.unwrap_or(2048),
                    tie_embeddings: raw.tie_word_embeddings.unwrap_or(false),
                    qkv_bias: kind == "qwen2" || bias,
                    o_bias: bias,
                    mlp_bias: raw.mlp_bias.unwrap_or(false),
                }
            }
            "gpt2" => {
                let act = raw.activation_function.as_deref().unwrap_or("gelu_new");
                if act != "gelu_new" && act != "gelu_pytorch_tanh" {
                    return Err(Error::invalid(
                        "config",
                        format!("activation_function {act:?}: only gelu_new"),
                    ));
                }
                let hidden = need(raw.n_embd, "n_embd")?;
                let heads = need(raw.n_head, "n_head")?;
                if hidden % heads != 0 {
                    return Err(Error::invalid(
                        "config",
                        format!("n_embd {hidden} is not a multiple of n_head {heads}"),
                    ));
                }
                Config {
                    arch: Arch::Gpt2,
                    vocab,
                    hidden,
                    layers: need(raw.n_layer, "n_layer")?,
                    heads,
                    kv_heads: heads,
                    head_dim: hidden / heads,
                    intermediate: raw.n_inner.unwrap_or(4 * hidden),
                    eps: raw.layer_norm_epsilon.unwrap_or(1e-5),
                    rope_theta: 0.0,
                    rope_scaling: None,
                    max_positions: need(raw.n_positions, "n_positions")?,
                    tie_embeddings: true,
                    qkv_bias: true,
                    o_bias: true,
                    mlp_bias: true,
                }
            }
            other => {
                return Err(Error::invalid(
                    "config",
                    format!(
                        "model_type {other:?}: this crate runs llama (SmolLM2, Llama), qwen2 and gpt2"
                    ),
                ));
            }
        };
        Ok(config)
    }
}

fn scaling(value: Option<&serde_json::Value>) -> Result<Option<Llama3Scaling>> {
    let Some(v) = value.filter(|v| !v.is_null()) else { return Ok(None) };
    let kind = v.get("rope_type").or_else(|| v.get("type")).and_then(|t| t.as_str()).unwrap_or("");
    if kind == "default" {
        return Ok(None);
    }
    if kind != "llama3" {
        return Err(Error::invalid(
            "config",
            format!("rope_scaling of type {kind:?}: only llama3"),
        ));
    }
    let f = |name: &str| {
        v.get(name)
            .and_then(serde_json::Value::as_f64)
            .ok_or_else(|| Error::invalid("config", format!("rope_scaling without {name}")))
    };
    Ok(Some(Llama3Scaling {
        factor: f("factor")?,
        low_freq_factor: f("low_freq_factor")?,
        high_freq_factor: f("high_freq_factor")?,
        original_max_position_embeddings: f("original_max_position_embeddings")? as usize,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama3_scaling_and_transformers_4_fields_are_read() {
        let c = Config::from_json(
            r#"{"model_type":"llama","vocab_size":128256,"hidden_size":2048,"intermediate_size":8192,
            "num_hidden_layers":16,"num_attention_heads":32,"num_key_value_heads":8,"rope_theta":500000.0,
            "rope_scaling":{"factor":32.0,"high_freq_factor":4.0,"low_freq_factor":1.0,
            "original_max_position_embeddings":8192,"rope_type":"llama3"},"tie_word_embeddings":true}"#,
        )
        .expect("Llama 3.2 1B's config");
        assert_eq!((c.head_dim, c.kv_heads, c.rope_theta), (64, 8, 500_000.0));
        assert_eq!(c.rope_scaling.map(|s| s.factor), Some(32.0));
        assert!(c.tie_embeddings && !c.qkv_bias);
    }

    #[test]
    fn what_is_not_run_is_refused_with_the_reason() {
        for (json, expected) in [
            (r#"{"model_type":"bert","vocab_size":10}"#, "model_type \"bert\""),
            (
                r#"{"model_type":"qwen2","vocab_size":10,"hidden_size":8,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":2,"use_sliding_window":true}"#,
                "sliding-window",
            ),
            (
                r#"{"model_type":"llama","vocab_size":10,"hidden_size":8,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":2,"rope_scaling":{"rope_type":"yarn","factor":4.0}}"#,
                "only llama3",
            ),
            (r#"{"model_type":"llama","vocab_size":10}"#, "without hidden_size"),
            ("not json", "not a model config"),
        ] {
            let err = Config::from_json(json).expect_err(expected).to_string();
            assert!(err.contains(expected), "{err}");
        }
    }
}
