//! Generation under the grammar of bars, with a KV cache, and the likelihood of bars.

use candle_core::{D, Tensor};
use fine_drums_codec::beat::{BeatOptions, Layout};
use fine_drums_llm::random;
use rand_xoshiro::SplitMix64;

use crate::error::{Error, Result};
use crate::model::{Cache, Model};
use crate::text::{Grammar, Tokenizer};

/// How tokens are drawn: the sampler every offline backend shares (temperature, top-k,
/// top-p), from `fine-drums-llm`.
pub use fine_drums_llm::sample::Sampling;

/// One generated completion.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Generated {
    /// The completion's text: a newline, then whole bar lines (and the stop sequence if the
    /// model wrote it).
    pub text: String,
    /// Tokens generated.
    pub tokens: usize,
    /// Whether the token budget ran out before the bars asked for.
    pub cut: bool,
}

/// A pretrained model with its adapters and tokenizer: what generates and scores drum text.
#[derive(Debug)]
pub struct Adapted {
    /// The model (with adapters).
    pub model: Model,
    /// Its tokenizer.
    pub tokenizer: Tokenizer,
}

/// Draws from `logits` (the allowed tokens' only) with `sampling`, through the shared sampler.
fn draw(logits: &[(u32, f32)], sampling: Sampling, rng: &mut SplitMix64) -> u32 {
    if sampling.temperature <= 0.0 {
        return logits.iter().max_by(|a, b| a.1.total_cmp(&b.1)).map_or(0, |p| p.0);
    }
    let max = logits.iter().map(|p| p.1).fold(f32::NEG_INFINITY, f32::max);
    let mut weights: Vec<f64> =
        logits.iter().map(|&(_, l)| f64::from((l - max) / sampling.temperature).exp()).collect();
    let i = sampling.draw(&mut weights, rng) as usize;
    logits.get(i).map_or(0, |p| p.0)
}

impl Adapted {
    /// `n` completions of `prompt` (the text before the completion, separator included):
    /// bars of `layout` in the format `beat`, `bars` of them or up to the stop sequence
    /// `stop`, in at most `max_tokens` tokens each (and within the model's context). Every
    /// bar decodes strictly.
    #[allow(clippy::too_many_arguments)]
    pub fn generate(
        &self,
        prompt: &str,
        beat: &BeatOptions,
        layout: Layout,
        bars: usize,
        stop: &str,
        n: usize,
        sampling: Sampling,
        seed: u64,
        max_tokens: usize,
    ) -> Result<Vec<Generated>> {
        let grammar = Grammar::new(beat, layout, bars.max(1), stop)?;
        let candidates = self.tokenizer.made_of(&grammar.alphabet);
        let ids = self.tokenizer.encode(prompt, true)?;
        if ids.is_empty() {
            return Err(Error::invalid("prompt", "it has no tokens"));
        }
        if ids.len() >= self.model.config().max_positions {
            return Err(Error::invalid(
                "prompt",
                format!(
                    "{} tokens, as long as the model's context ({})",
                    ids.len(),
                    self.model.config().max_positions
                ),
            ));
        }
        let mut rng = random::seeded(seed);
        let mut first = Cache::default();
        let first_logits = self.model.step(&ids, &mut first)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let mut cache = first.clone();
            let mut logits = first_logits.clone();
            let mut state = grammar.start();
            let mut text = Vec::new();
            let mut whole = 0;
            let mut tokens = 0;
            let room = self.model.config().max_positions;
            while !state.done() && tokens < max_tokens && cache.len() < room {
                let values: Vec<f32> = logits.to_vec1()?;
                let allowed: Vec<(u32, f32)> = candidates
                    .iter()
                    .filter(|(_, t)| grammar.accepts(&state, t).is_some())
                    .map(|(id, _)| (*id, values[*id as usize]))
                    .collect();
                if allowed.is_empty() {
                    return Err(Error::invalid(
                        "tokenizer",
                        "no token continues the bar (the tokenizer lacks single characters)",
                    ));
                }
                let id = draw(&allowed, sampling, &mut rng);
                let bytes = self.tokenizer.text(id).unwrap_or_default();
                state = grammar.accepts(&state, bytes).unwrap_or(state);
                text.extend_from_slice(bytes);
                tokens += 1;
                if state.between_bars() || state.done() {
                    whole = text.len();
                }
                if !state.done() {
                    logits = self.model.step(&[id], &mut cache)?;
                }
            }
            let cut = !state.done();
            text.truncate(whole);
            let text =
                String::from_utf8(text).map_err(|e| Error::invalid("tokens", e.to_string()))?;
            out.push(Generated { text, tokens, cut });
        }
        Ok(out)
    }

    /// The negative log-likelihood of `completion` after `prompt`, in nats, summed over its
    /// tokens, and the number of tokens.
    pub fn nll(&self, prompt: &str, completion: &str) -> Result<(f64, usize)> {
        let p = self.tokenizer.encode(prompt, true)?;
        let c = self.tokenizer.encode(completion, false)?;
        if c.is_empty() {
            return Ok((0.0, 0));
        }
        let all: Vec<u32> = p.iter().chain(&c).copied().collect();
        let input = Tensor::from_vec(
            all[..all.len() - 1].to_vec(),
            (1, all.len() - 1),
            self.model.device(),
        )?;
        let h = self.model.hidden(&input, None, None)?.squeeze(0)?;
        let h = h.narrow(0, p.len() - 1, c.len())?;
        let logits = self.model.logits(&h)?;
        let logp = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
        let target = Tensor::from_vec(c.clone(), (c.len(), 1), self.model.device())?;
        let picked: f32 = logp.gather(&target, 1)?.sum_all()?.to_scalar()?;
        Ok((-f64::from(picked), c.len()))
    }
}
