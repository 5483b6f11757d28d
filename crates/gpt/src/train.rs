//! Training: windows of the training examples in a seeded order, AdamW with warm-up and
//! cosine decay, a validation pass after every epoch, early stopping on it, and a checkpoint
//! after every epoch that a killed run resumes from, to the same final weights.

use std::path::Path;
use std::time::Instant;

use candle_core::{Device, Tensor};
use fine_drums_codec::Format;
use fine_drums_dataset::Template;
use fine_drums_dataset::controls::Piece;
use fine_drums_train::optim::{AdamW, AdamWConfig};
use rand_core::{Rng, SeedableRng};
use rand_xoshiro::SplitMix64;

use crate::checkpoint::{self, Meta, Progress};
use crate::config::Config;
use crate::controls::{self, Tagged};
use crate::error::{Error, Result};
use crate::model::{Batch, Dropout, Gpt};
use crate::tokens::{Encoded, Vocabulary};

pub use fine_drums_train::Event;

/// How a model is trained.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct TrainOptions {
    /// The model's size: `tiny`, `small` or `base` (see [`Config::preset`]). Default: small.
    pub preset: String,
    /// The most epochs. Default: 8 (the small preset on the GMD's pieces in 11 min 16 s on 2
    /// cores, validation loss 1.565; the built-in model was trained with 13 and stopped
    /// early after 12).
    pub epochs: u32,
    /// Examples per step. Default: 16.
    pub batch: usize,
    /// The peak learning rate. Default: 3e-3.
    pub lr: f64,
    /// Steps of linear warm-up. Default: 100.
    pub warmup: u64,
    /// Epochs without a better validation loss before training stops. Default: 2.
    pub patience: u32,
    /// The seed of the weights and of the order of the examples. Default: 0.
    pub seed: u64,
    /// A step needs this many occurrences in training to get its own token. Default: 2.
    pub min_count: usize,
    /// The share of activations zeroed in training (see [`Dropout`]), below 1. Default: 0
    /// (the built-in model's). 0.1 gave the `small` preset a validation loss of 1.543
    /// against 1.564 (see the crate README).
    pub dropout: f32,
}

impl Default for TrainOptions {
    fn default() -> TrainOptions {
        TrainOptions {
            preset: "small".into(),
            epochs: 8,
            batch: 16,
            lr: 3e-3,
            warmup: 100,
            patience: 2,
            seed: 0,
            min_count: 2,
            dropout: 0.0,
        }
    }
}

/// Training examples (one text per window: prompt bars then completion bars, one bar a line)
/// from a fine-tuning file `prepare` wrote: legacy prompt/completion lines, or chat lines.
/// Returns the examples and the commonest completion length in bars.
pub fn examples_from_jsonl(
    template: &Template,
    name: &str,
    jsonl: &str,
) -> Result<(Vec<String>, usize)> {
    let read = fine_drums_dataset::export::read_examples(template, name, jsonl)?;
    let texts = read
        .examples
        .iter()
        .map(|e| format!("{}\n{}", e.prompt.trim_end(), e.completion))
        .collect();
    Ok((texts, read.completion_bars))
}

/// Training examples (one whole file each) from a `*.pieces.jsonl` file `prepare` wrote,
/// or `None` when `jsonl` holds no pieces (a prompt/completion file).
pub fn pieces_from_jsonl(name: &str, jsonl: &str) -> Result<Option<Vec<Piece>>> {
    let first = jsonl.lines().find(|l| !l.trim().is_empty());
    let is_piece = first.is_some_and(|l| {
        serde_json::from_str::<serde_json::Value>(l)
            .is_ok_and(|v| v.get("text").is_some() && v.get("prompt").is_none())
    });
    if !is_piece {
        return Ok(None);
    }
    Ok(Some(fine_drums_dataset::controls::read_pieces(name, jsonl)?))
}

/// Bars a completion of a model trained on pieces holds, when a request does not say.
pub const PIECE_COMPLETION_BARS: usize = 16;

/// A training run.
pub struct Trainer {
    gpt: Gpt,
    vocab: Vocabulary,
    opt: AdamW,
    meta: Meta,
    options: TrainOptions,
    train: Vec<Tagged>,
    valid: Vec<Encoded>,
    /// The best weights so far, as tensors by name.
    best: Option<Vec<(String, Tensor)>>,
    /// Set from outside to stop training at the next step.
    stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

impl std::fmt::Debug for Trainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer").field("meta", &self.meta).finish_non_exhaustive()
    }
}

/// The training sequences of `pieces`: windows of each whole piece, with its controls.
fn encode_pieces(vocab: &Vocabulary, pieces: &[Piece], context: usize) -> Result<Vec<Tagged>> {
    let mut out = Vec::new();
    for p in pieces {
        let whole = controls::encode_piece(vocab, p)?;
        // Room for the fill-in-the-middle markers and the end.
        out.extend(controls::windows(&whole, context - 4).into_iter().filter(|w| w.len() >= 2));
    }
    Ok(out)
}

/// What a run trains on.
enum Data<'a> {
    Texts(&'a [String], &'a [String]),
    Pieces(&'a [Piece], &'a [Piece]),
}

impl Data<'_> {
    fn encode(&self, vocab: &Vocabulary, context: usize) -> Result<(Vec<Tagged>, Vec<Encoded>)> {
        Ok(match self {
            Data::Texts(t, v) => (
                encode_all(vocab, t, context)?.into_iter().map(Tagged::plain).collect(),
                encode_all(vocab, v, context)?,
            ),
            Data::Pieces(t, v) => (
                encode_pieces(vocab, t, context)?,
                encode_pieces(vocab, v, context)?.into_iter().map(|t| t.enc).collect(),
            ),
        })
    }
}

fn encode_all(vocab: &Vocabulary, texts: &[String], context: usize) -> Result<Vec<Encoded>> {
    let mut out = Vec::with_capacity(texts.len());
    for (i, t) in texts.iter().enumerate() {
        let mut e = vocab
            .encode(t)
            .map_err(|e| Error::invalid("example", format!("example {}: {e}", i + 1)))?;
        e.end();
        if e.len() > context {
            // Keep whole bars: cut at the last bar that starts inside the context.
            let cut = (1..=context)
                .rev()
                .find(|&k| e.ids.get(k) == Some(&crate::tokens::BAR))
                .unwrap_or(context);
            e.ids.truncate(cut);
            e.slot.truncate(cut);
            e.bar.truncate(cut);
        }
        if e.len() >= 2 {
            out.push(e);
        }
    }
    Ok(out)
}

impl Trainer {
    /// A new run on `train` (with `valid` for early stopping), for texts written with
    /// `template` in the beat format. The vocabulary is learnt from `train`.
    pub fn new(
        template: &Template,
        train: &[String],
        valid: &[String],
        completion_bars: usize,
        options: &TrainOptions,
        device: &Device,
    ) -> Result<Trainer> {
        if train.is_empty() {
            return Err(Error::invalid("training data", "no training example"));
        }
        let vocab = Vocabulary::learn(
            beat_of(template)?,
            train.iter().map(String::as_str),
            options.min_count,
        )?;
        Trainer::build(template, vocab, Data::Texts(train, valid), completion_bars, options, device)
    }

    /// A new run on whole pieces (`prepare`'s `*.pieces.jsonl`): every bar of every file,
    /// in windows that never cross a file, with the controls ([`crate::Steer`]) as tokens,
    /// dropped at random, and a share of the windows rearranged for fill-in-the-middle.
    /// The vocabulary is learnt from `train`, its styles from `train`'s.
    pub fn on_pieces(
        template: &Template,
        train: &[Piece],
        valid: &[Piece],
        options: &TrainOptions,
        device: &Device,
    ) -> Result<Trainer> {
        if train.is_empty() {
            return Err(Error::invalid("training data", "no training piece"));
        }
        let mut styles: Vec<String> = train.iter().filter_map(|p| p.style.clone()).collect();
        styles.sort();
        styles.dedup();
        let vocab = Vocabulary::learn(
            beat_of(template)?,
            train.iter().map(|p| p.text.as_str()),
            options.min_count,
        )?
        .with_controls(styles);
        let data = Data::Pieces(train, valid);
        Trainer::build(template, vocab, data, PIECE_COMPLETION_BARS, options, device)
    }

    fn build(
        template: &Template,
        vocab: Vocabulary,
        data: Data<'_>,
        completion_bars: usize,
        options: &TrainOptions,
        device: &Device,
    ) -> Result<Trainer> {
        let config = Config::preset(&options.preset, vocab.len())?;
        let gpt = Gpt::new(&config, options.seed, device)?;
        let opt = AdamW::new(gpt.vars(), AdamWConfig::with_lr(options.lr))?;
        let meta = Meta {
            config: config.clone(),
            template: template.clone(),
            training: Progress {
                seed: options.seed,
                rng: options.seed ^ 0x5851_f42d_4c95_7f2d,
                completion_bars,
                ..Progress::default()
            },
        };
        let (train, valid) = data.encode(&vocab, config.context)?;
        Ok(Trainer {
            train,
            valid,
            gpt,
            vocab,
            opt,
            meta,
            options: options.clone(),
            best: None,
            stop: None,
        })
    }

    /// Resumes the run checkpointed in `dir` on the same data: the weights, the optimiser,
    /// the order of the examples and the early-stopping state all go on where they were.
    pub fn resume(
        dir: &Path,
        train: &[String],
        valid: &[String],
        options: &TrainOptions,
        device: &Device,
    ) -> Result<Trainer> {
        Trainer::resume_with(dir, Data::Texts(train, valid), options, device)
    }

    /// [`resume`](Trainer::resume) for a run on pieces ([`on_pieces`](Trainer::on_pieces)).
    pub fn resume_on_pieces(
        dir: &Path,
        train: &[Piece],
        valid: &[Piece],
        options: &TrainOptions,
        device: &Device,
    ) -> Result<Trainer> {
        Trainer::resume_with(dir, Data::Pieces(train, valid), options, device)
    }

    fn resume_with(
        dir: &Path,
        data: Data<'_>,
        options: &TrainOptions,
        device: &Device,
    ) -> Result<Trainer> {
        let loaded = checkpoint::load(dir, device)?;
        let state = loaded.optimizer.ok_or_else(|| {
            Error::checkpoint(
                &dir.join(checkpoint::OPTIMIZER),
                "missing: this is a finished model, not a training checkpoint",
                None,
            )
        })?;
        let mut opt = AdamW::new(loaded.gpt.vars(), AdamWConfig::with_lr(options.lr))?;
        opt.restore(&state, loaded.meta.training.step)?;
        let best_dir = dir.join("best");
        let best = if checkpoint::exists(&best_dir)? {
            let b = checkpoint::load(&best_dir, device)?;
            Some(
                b.gpt
                    .vars()
                    .iter()
                    .map(|(n, v)| Ok((n.clone(), v.as_tensor().copy()?)))
                    .collect::<Result<Vec<_>>>()?,
            )
        } else {
            None
        };
        let (train, valid) = data.encode(&loaded.vocab, loaded.meta.config.context)?;
        Ok(Trainer {
            train,
            valid,
            gpt: loaded.gpt,
            vocab: loaded.vocab,
            opt,
            meta: loaded.meta,
            options: options.clone(),
            best,
            stop: None,
        })
    }

    /// The model as trained so far.
    pub fn gpt(&self) -> &Gpt {
        &self.gpt
    }

    /// Its vocabulary.
    pub fn vocab(&self) -> &Vocabulary {
        &self.vocab
    }

    /// Its meta: config, template, progress.
    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    fn batch(&self, set: &[Encoded], idx: &[usize]) -> Result<Batch> {
        let picked: Vec<&Encoded> = idx.iter().map(|&i| &set[i]).collect();
        batch_of(&picked, self.gpt.device())
    }

    /// The training examples `idx` as this epoch sees them: each drops its controls and is
    /// rearranged by a generator of its own, seeded from the epoch's and its index, so that
    /// a resumed run sees the same.
    fn train_batch(&self, idx: &[usize], epoch_seed: u64) -> Result<(Batch, usize)> {
        let seqs: Vec<Encoded> = idx
            .iter()
            .map(|&i| {
                let seed = epoch_seed ^ (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                let mut rng = SplitMix64::seed_from_u64(seed);
                controls::realise(&self.train[i], &self.vocab, &mut rng)
            })
            .collect();
        let tokens = seqs.iter().map(Encoded::len).sum();
        Ok((batch_of(&seqs.iter().collect::<Vec<_>>(), self.gpt.device())?, tokens))
    }

    /// The validation loss per token.
    pub fn validation_loss(&self) -> Result<f64> {
        let (mut total, mut count) = (0.0, 0usize);
        let idx: Vec<usize> = (0..self.valid.len()).collect();
        for chunk in idx.chunks(self.options.batch.max(1)) {
            let (loss, n) = self.gpt.loss(&self.batch(&self.valid, chunk)?)?;
            total += f64::from(loss.to_scalar::<f32>()?) * n as f64;
            count += n;
        }
        Ok(if count == 0 { f64::NAN } else { total / count as f64 })
    }

    fn lr_at(&self, step: u64, total: u64) -> f64 {
        fine_drums_train::schedule::lr_at(self.options.lr, self.options.warmup, step, total)
    }

    /// Stops [`run`](Trainer::run) at the next step once `flag` is set: it returns
    /// [`Error::Stopped`], and the last epoch's checkpoint is what a resumed run goes on from.
    pub fn stop_when(&mut self, flag: std::sync::Arc<std::sync::atomic::AtomicBool>) {
        self.stop = Some(flag);
    }

    /// Trains until the last epoch or early stopping, checkpointing into `dir` after every
    /// epoch when one is given; ends with the best weights in place.
    pub fn run(&mut self, dir: Option<&Path>, on_event: &mut dyn FnMut(&Event)) -> Result<()> {
        let b = self.options.batch.max(1);
        let steps_per_epoch = self.train.len().div_ceil(b) as u64;
        let total = steps_per_epoch * u64::from(self.options.epochs);
        let tokens: usize = self.train.iter().map(Tagged::len).sum();
        on_event(&Event::Started {
            parameters: self.meta.config.parameters(),
            vocabulary: self.vocab.len(),
            tokens,
            steps_per_epoch,
            from_step: self.meta.training.step,
        });
        while !self.meta.training.done && self.meta.training.epoch < self.options.epochs {
            let epoch = self.meta.training.epoch + 1;
            let mut rng = SplitMix64::seed_from_u64(self.meta.training.rng);
            let mut order: Vec<usize> = (0..self.train.len()).collect();
            for i in (1..order.len()).rev() {
                let j = ((u128::from(rng.next_u64()) * (i as u128 + 1)) >> 64) as usize;
                order.swap(i, j);
            }
            let epoch_seed = self.meta.training.rng;
            let started = Instant::now();
            let (mut sum, mut count, mut seen) = (0.0, 0usize, 0usize);
            for chunk in order.chunks(b) {
                let step = self.meta.training.step;
                if self.stop.as_ref().is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed))
                {
                    return Err(Error::Stopped { step });
                }
                self.opt.set_lr(self.lr_at(step, total));
                let (batch, tokens) = self.train_batch(chunk, epoch_seed)?;
                // The masks' seed follows the step, so a resumed run drops the same.
                let dropout = Dropout {
                    rate: self.options.dropout,
                    seed: epoch_seed ^ (step + 1).wrapping_mul(0xd6e8_feb8_6659_fd93),
                };
                let (loss, n, grads) = self.gpt.loss_and_grads_dropped(&batch, dropout)?;
                self.opt.step(&grads)?;
                let loss = f64::from(loss);
                if !loss.is_finite() {
                    return Err(Error::invalid(
                        "training",
                        format!("the loss became {loss} at step {}", step + 1),
                    ));
                }
                (sum, count) = (sum + loss * n as f64, count + n);
                seen += tokens;
                self.meta.training.step += 1;
                on_event(&Event::Step {
                    epoch,
                    step: self.meta.training.step,
                    loss,
                    tokens_per_second: seen as f64 / started.elapsed().as_secs_f64().max(1e-9),
                });
            }
            let train_loss = sum / count.max(1) as f64;
            let validation_loss = self.validation_loss()?;
            // Without validation examples the training loss chooses the weights (and stops
            // early): a NaN would never be better, and training would stop after `patience`.
            let score = if self.valid.is_empty() { train_loss } else { validation_loss };
            let better = self.meta.training.best.is_none_or(|(b, _)| score < b);
            if better {
                self.meta.training.best = Some((score, self.meta.training.step));
                self.meta.training.stale = 0;
                self.best = Some(
                    self.gpt
                        .vars()
                        .iter()
                        .map(|(n, v)| Ok((n.clone(), v.as_tensor().copy()?)))
                        .collect::<Result<_>>()?,
                );
            } else {
                self.meta.training.stale += 1;
            }
            self.meta.training.epoch = epoch;
            self.meta.training.rng = rng.next_u64();
            let stop =
                self.meta.training.stale >= self.options.patience || epoch >= self.options.epochs;
            if stop {
                self.meta.training.done = true;
            }
            // The checkpoint comes first: an epoch reported is an epoch a resumed run keeps.
            if let Some(dir) = dir {
                self.checkpoint(dir, better)?;
            }
            on_event(&Event::Epoch { epoch, train_loss, validation_loss, best: better });
        }
        if let Some(best) = &self.best {
            let map = best.iter().cloned().collect();
            self.gpt.load(&map)?;
        }
        let (validation_loss, _) = self.meta.training.best.unwrap_or((f64::NAN, 0));
        let reason = if self.meta.training.stale >= self.options.patience {
            let loss = if self.valid.is_empty() { "training" } else { "validation" };
            format!("early stopping: no better {loss} loss for {} epochs", self.meta.training.stale)
        } else {
            format!("{} epochs done", self.meta.training.epoch)
        };
        on_event(&Event::Finished { reason, validation_loss });
        Ok(())
    }

    /// Writes the training checkpoint (and the best model beside it when `better`).
    fn checkpoint(&self, dir: &Path, better: bool) -> Result<()> {
        let (state, _) = self.opt.state();
        if better {
            checkpoint::save(&dir.join("best"), &self.gpt, &self.vocab, &self.meta, None, false)?;
        }
        checkpoint::save(dir, &self.gpt, &self.vocab, &self.meta, Some(&state), false)
    }

    /// Saves the model (the best weights, once [`run`](Trainer::run) has ended) into `dir`,
    /// in f16 when `half`.
    pub fn save_model(&self, dir: &Path, half: bool) -> Result<()> {
        checkpoint::save(dir, &self.gpt, &self.vocab, &self.meta, None, half)
    }
}

fn beat_of(template: &Template) -> Result<fine_drums_codec::beat::BeatOptions> {
    match template.codec.format {
        Format::Beat(beat) => Ok(beat),
        other => Err(Error::invalid(
            "format",
            format!("the drum GPT reads the beat format, not {}", other.name()),
        )),
    }
}

/// One batch of `seqs`, each padded to the longest.
fn batch_of(seqs: &[&Encoded], device: &Device) -> Result<Batch> {
    let len = seqs.iter().map(|s| s.len()).max().unwrap_or(2);
    let mut seq = Encoded::default();
    let mut starts = Vec::with_capacity(seqs.len());
    for s in seqs {
        starts.push(seq.len());
        seq.extend(s);
        for _ in s.len()..len {
            seq.push(crate::tokens::PAD, 0, 0);
        }
    }
    Batch::windows(&seq, &starts, len, device)
}
