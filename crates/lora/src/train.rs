//! LoRA training on prompt/completion examples: the loss on the completion's tokens only (as
//! OpenAI's legacy fine-tuning), AdamW on the adapters with warm-up and cosine decay, a
//! validation pass after every epoch, and a checkpoint after every epoch that a killed run
//! resumes from.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use candle_core::backprop::GradStore;
use candle_core::{D, Tensor};
use fine_drums_train::Event;
use fine_drums_train::checkpoint::{Files, OPTIMIZER, safetensors_bytes, save_files};
use fine_drums_train::optim::{AdamW, AdamWConfig};
use rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::lora::{self, ADAPTER_CONFIG, ADAPTER_WEIGHTS, LoraConfig};
use crate::model::{Model, Noise};
use crate::text::Tokenizer;

/// Settings of a LoRA run.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct TrainOptions {
    /// The adapters' settings; `None`: [`LoraConfig::for_arch`].
    pub lora: Option<LoraConfig>,
    /// Passes over the training examples. Default: 3.
    pub epochs: u32,
    /// Examples per step. Default: 4.
    pub batch: usize,
    /// Examples per forward pass: a step adds up the gradients of its micro-batches, so that
    /// memory holds the activations of this many examples only. Default: 1.
    pub micro_batch: usize,
    /// The peak learning rate. Default: 2e-4 (PEFT's examples use 1e-4 to 3e-4).
    pub lr: f64,
    /// Steps of linear warm-up. Default: 10.
    pub warmup: u64,
    /// The seed of the adapters' start, the examples' order and the dropout. Default: 0.
    pub seed: u64,
    /// Examples longer than this many tokens are cut (their prompt's start is dropped).
    /// Default: 1024.
    pub max_tokens: usize,
}

impl Default for TrainOptions {
    fn default() -> TrainOptions {
        TrainOptions {
            lora: None,
            epochs: 3,
            batch: 4,
            micro_batch: 1,
            lr: 2e-4,
            warmup: 10,
            seed: 0,
            max_tokens: 1024,
        }
    }
}

/// One training example as tokens: the prompt's, then the completion's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Example {
    /// Prompt then completion.
    pub ids: Vec<u32>,
    /// Where the completion starts.
    pub completion: usize,
}

/// Tokenizes prompt/completion pairs as generation will see them: the prompt with the
/// tokenizer's special tokens, the completion without. A long prompt loses its start.
pub fn examples(
    tokenizer: &Tokenizer,
    pairs: &[(String, String)],
    max_tokens: usize,
) -> Result<Vec<Example>> {
    let mut out = Vec::with_capacity(pairs.len());
    for (prompt, completion) in pairs {
        let mut ids = tokenizer.encode(prompt, true)?;
        let c = tokenizer.encode(completion, false)?;
        if c.is_empty() {
            continue;
        }
        if ids.len() + c.len() > max_tokens {
            let room = max_tokens.saturating_sub(c.len()).max(1);
            ids.drain(..ids.len().saturating_sub(room));
        }
        let completion = ids.len();
        ids.extend(c);
        ids.truncate(max_tokens.max(completion + 1));
        out.push(Example { ids, completion });
    }
    Ok(out)
}

/// Where a run stands, saved with each checkpoint.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Progress {
    /// The seed the run started from.
    pub seed: u64,
    /// Optimiser steps taken.
    pub step: u64,
    /// Epochs finished.
    pub epoch: u32,
    /// The best validation loss (the training loss without validation examples).
    pub best: Option<f64>,
    /// The base model's folder.
    pub base: String,
}

/// The checkpoint's progress file.
pub const PROGRESS: &str = "progress.json";

/// A LoRA training run.
pub struct Trainer {
    model: Model,
    lora: LoraConfig,
    opt: AdamW,
    options: TrainOptions,
    /// Shared, so that a step can borrow its batch while the trainer changes.
    train: Arc<[Example]>,
    valid: Vec<Example>,
    progress: Progress,
    stop: Option<Arc<AtomicBool>>,
}

impl std::fmt::Debug for Trainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer").field("progress", &self.progress).finish_non_exhaustive()
    }
}

impl Trainer {
    /// A run that puts fresh adapters on `model` (loaded from `base`) and trains them.
    pub fn new(
        mut model: Model,
        base: &Path,
        train: Vec<Example>,
        valid: Vec<Example>,
        options: &TrainOptions,
    ) -> Result<Trainer> {
        if train.is_empty() {
            return Err(Error::invalid("training examples", "none"));
        }
        if options.batch == 0 || options.epochs == 0 || options.micro_batch == 0 {
            return Err(Error::invalid(
                "training",
                "batch, micro-batch and epochs must be at least 1",
            ));
        }
        let lora =
            options.lora.clone().unwrap_or_else(|| LoraConfig::for_arch(model.config().arch));
        lora::attach(&mut model, &lora, options.seed)?;
        let opt = AdamW::new(&lora::tensors(&model), adam(options))?;
        let progress = Progress {
            seed: options.seed,
            base: base.display().to_string(),
            ..Progress::default()
        };
        Ok(Trainer {
            model,
            lora,
            opt,
            options: options.clone(),
            train: train.into(),
            valid,
            progress,
            stop: None,
        })
    }

    /// The run saved in `checkpoint`, on `model` (its base, without adapters), to go on.
    pub fn resume(
        mut model: Model,
        checkpoint: &Path,
        train: Vec<Example>,
        valid: Vec<Example>,
        options: &TrainOptions,
    ) -> Result<Trainer> {
        let files = Files::open(checkpoint)?
            .ok_or_else(|| Error::file(checkpoint, "no checkpoint here"))?;
        let progress: Progress = serde_json::from_slice(&files.read(PROGRESS)?).map_err(|e| {
            Error::file_because(&checkpoint.join(PROGRESS), "not a progress file", e)
        })?;
        let lora = lora::load_files(
            &mut model,
            checkpoint,
            &files.read(ADAPTER_CONFIG)?,
            &files.read(ADAPTER_WEIGHTS)?,
        )?;
        let mut opt = AdamW::new(&lora::tensors(&model), adam(options))?;
        let state = candle_core::safetensors::load_buffer(&files.read(OPTIMIZER)?, model.device())
            .map_err(|e| {
                Error::file_because(&checkpoint.join(OPTIMIZER), "not a safetensors file", e)
            })?;
        opt.restore(&state, progress.step)?;
        let mut options = options.clone();
        options.seed = progress.seed;
        Ok(Trainer { model, lora, opt, options, train: train.into(), valid, progress, stop: None })
    }

    /// Stops the run at its next step once `flag` is set (the run returns [`Error::Stopped`]).
    pub fn stop_when(&mut self, flag: Arc<AtomicBool>) {
        self.stop = Some(flag);
    }

    /// The model with its adapters.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The adapters' settings.
    pub fn lora(&self) -> &LoraConfig {
        &self.lora
    }

    /// Where the run stands.
    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    fn steps_per_epoch(&self) -> u64 {
        self.train.len().div_ceil(self.options.batch) as u64
    }

    /// A batch as the model reads it: the ids (padded to the longest), and the positions
    /// whose next token is scored, with those tokens.
    fn inputs(&self, batch: &[&Example]) -> Result<(Tensor, Vec<u32>, Vec<u32>)> {
        let len = batch.iter().map(|e| e.ids.len() - 1).max().unwrap_or(1);
        let mut input = Vec::with_capacity(batch.len() * len);
        let (mut rows, mut targets) = (Vec::new(), Vec::new());
        for (b, e) in batch.iter().enumerate() {
            let n = e.ids.len() - 1;
            input.extend_from_slice(&e.ids[..n]);
            input.extend(std::iter::repeat_n(0, len - n));
            for p in e.completion.saturating_sub(1)..n {
                rows.push((b * len + p) as u32);
                targets.push(e.ids[p + 1]);
            }
        }
        let ids = Tensor::from_vec(input, (batch.len(), len), self.model.device())?;
        Ok((ids, rows, targets))
    }

    /// The mean loss per completion token of `batch`, as a tensor to differentiate.
    fn loss(&self, batch: &[&Example], noise: Option<&mut Noise>) -> Result<(Tensor, usize)> {
        let (ids, rows, targets) = self.inputs(batch)?;
        let device = self.model.device();
        let h = self.model.hidden(&ids, None, noise)?;
        let (b, len) = ids.dims2()?;
        let h = h.reshape((b * len, h.dim(D::Minus1)?))?;
        let n = rows.len();
        let h = h.index_select(&Tensor::from_vec(rows, n, device)?, 0)?;
        let logp = candle_nn::ops::log_softmax(&self.model.logits(&h)?, D::Minus1)?;
        let picked = logp.gather(&Tensor::from_vec(targets, (n, 1), device)?, 1)?;
        Ok(((picked.sum_all()? / -(n as f64))?, n))
    }

    /// The mean loss of a micro-batch and the gradients of `share` times it, beside the
    /// variables they belong to: written out for a Llama on the CPU, else by autograd.
    fn micro_gradients(
        &self,
        micro: &[&Example],
        share: &dyn Fn(usize) -> f64,
        noise: &mut Noise,
    ) -> Result<(f64, Vec<(Tensor, Tensor)>)> {
        if self.model.writes_out_its_step() {
            let (ids, rows, targets) = self.inputs(micro)?;
            let share = share(rows.len());
            let (loss, grads) = self.model.loss_and_grads(&ids, &rows, &targets, share, noise)?;
            return Ok((loss * share, grads));
        }
        let (loss, n) = self.loss(micro, Some(noise))?;
        let share = share(n);
        let mean = f64::from(loss.to_scalar::<f32>()?) * share;
        let grads = (loss * share)?.backward()?;
        let out = lora::tensors(&self.model)
            .into_iter()
            .filter_map(|(_, var)| {
                let g = grads.get(var.as_tensor())?.detach();
                Some((var.as_tensor().clone(), g))
            })
            .collect();
        Ok((mean, out))
    }

    /// The mean loss per completion token of a batch and its gradients, added up over
    /// micro-batches (each weighted by its share of the batch's completion tokens).
    fn gradients(&self, batch: &[&Example], noise: &mut Noise) -> Result<(f64, GradStore)> {
        let vars = lora::tensors(&self.model);
        let targets =
            |b: &[&Example]| b.iter().map(|e| e.ids.len() - e.completion.max(1)).sum::<usize>();
        let total = targets(batch).max(1) as f64;
        let mut sums: Vec<Option<Tensor>> = vec![None; vars.len()];
        let mut mean = 0.0;
        for micro in batch.chunks(self.options.micro_batch.max(1)) {
            let (loss, grads) = self.micro_gradients(micro, &|n| n as f64 / total, noise)?;
            mean += loss;
            for (var, g) in grads {
                let Some(i) = vars.iter().position(|(_, v)| v.as_tensor().id() == var.id()) else {
                    continue;
                };
                sums[i] = Some(match sums[i].take() {
                    Some(s) => (s + g)?,
                    None => g,
                });
            }
        }
        let mut store = GradStore::default();
        for (sum, (_, var)) in sums.into_iter().zip(&vars) {
            if let Some(g) = sum {
                store.insert(var.as_tensor(), g);
            }
        }
        Ok((mean, store))
    }

    /// The mean loss per completion token over `examples`, without dropout.
    fn mean_loss(&self, examples: &[Example]) -> Result<f64> {
        let (mut total, mut tokens) = (0.0, 0usize);
        for chunk in examples.chunks(self.options.micro_batch.max(1)) {
            let batch: Vec<&Example> = chunk.iter().collect();
            let (l, n) = self.loss(&batch, None)?;
            total += f64::from(l.to_scalar::<f32>()?) * n as f64;
            tokens += n;
        }
        Ok(if tokens == 0 { f64::NAN } else { total / tokens as f64 })
    }

    /// The mean validation loss per completion token (NaN without validation examples).
    pub fn validation_loss(&self) -> Result<f64> {
        self.mean_loss(&self.valid)
    }

    /// The mean training loss per completion token.
    pub fn training_loss(&self) -> Result<f64> {
        self.mean_loss(&self.train)
    }

    fn lr_at(&self, step: u64, total: u64) -> f64 {
        fine_drums_train::schedule::lr_at(self.options.lr, self.options.warmup, step, total)
    }

    /// One optimiser step on `batch` (the gradients of its micro-batches added up), at the
    /// learning rate the schedule gives the run's next step, with dropout masks from `noise`.
    /// Returns the batch's mean loss per completion token before the step. [`Trainer::run`]
    /// takes its steps through this; a caller with its own loop (or a benchmark) can too.
    pub fn step(&mut self, batch: &[Example], noise: &mut Noise) -> Result<f64> {
        if batch.is_empty() {
            return Err(Error::invalid("training batch", "no examples"));
        }
        if let Some(i) = batch.iter().position(|e| e.ids.len() < 2 || e.completion >= e.ids.len()) {
            return Err(Error::invalid(
                "training batch",
                format!("example {i} has no completion token to learn"),
            ));
        }
        let vocab = self.model.config().vocab;
        if let Some((i, id)) = batch
            .iter()
            .enumerate()
            .find_map(|(i, e)| e.ids.iter().find(|&&id| id as usize >= vocab).map(|&id| (i, id)))
        {
            return Err(Error::invalid(
                "training batch",
                format!("example {i} has token {id}, beyond the model's vocabulary of {vocab}"),
            ));
        }
        self.step_on(&batch.iter().collect::<Vec<_>>(), noise)
    }

    fn step_on(&mut self, batch: &[&Example], noise: &mut Noise) -> Result<f64> {
        let (loss, grads) = self.gradients(batch, noise)?;
        let total = self.steps_per_epoch() * u64::from(self.options.epochs);
        self.opt.set_lr(self.lr_at(self.progress.step, total));
        self.opt.step(&grads)?;
        self.progress.step += 1;
        Ok(loss)
    }

    /// Trains to the last epoch, saving a checkpoint into `checkpoint` after each.
    pub fn run(
        &mut self,
        checkpoint: Option<&Path>,
        on_event: &mut dyn FnMut(&Event),
    ) -> Result<()> {
        let per_epoch = self.steps_per_epoch();
        let parameters: usize =
            lora::tensors(&self.model).iter().map(|(_, v)| v.elem_count()).sum();
        on_event(&Event::Started {
            parameters,
            vocabulary: self.model.config().vocab,
            tokens: self.train.iter().map(|e| e.ids.len()).sum(),
            steps_per_epoch: per_epoch,
            from_step: self.progress.step,
        });
        while self.progress.epoch < self.options.epochs {
            let epoch = self.progress.epoch;
            // The order of an epoch follows from the seed and the epoch alone, so a resumed
            // run sees the examples in the order the first would have.
            let mut order: Vec<usize> = (0..self.train.len()).collect();
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(
                self.options.seed ^ u64::from(epoch).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            );
            for i in (1..order.len()).rev() {
                order.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
            }
            let mut noise = Noise::new(rng.next_u64());
            let train = Arc::clone(&self.train);
            let start = Instant::now();
            let mut tokens = 0usize;
            for chunk in order.chunks(self.options.batch) {
                if self.stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed)) {
                    return Err(Error::Stopped { step: self.progress.step });
                }
                let batch: Vec<&Example> = chunk.iter().map(|&i| &train[i]).collect();
                tokens += batch.iter().map(|e| e.ids.len()).sum::<usize>();
                let loss = self.step_on(&batch, &mut noise)?;
                let secs = start.elapsed().as_secs_f64().max(1e-9);
                on_event(&Event::Step {
                    epoch: epoch + 1,
                    step: self.progress.step,
                    loss,
                    tokens_per_second: tokens as f64 / secs,
                });
            }
            self.progress.epoch += 1;
            let train_loss = self.training_loss()?;
            let validation_loss = self.validation_loss()?;
            let judged = if validation_loss.is_nan() { train_loss } else { validation_loss };
            let best = self.progress.best.is_none_or(|b| judged < b);
            if best {
                self.progress.best = Some(judged);
            }
            on_event(&Event::Epoch {
                epoch: self.progress.epoch,
                train_loss,
                validation_loss,
                best,
            });
            if let Some(dir) = checkpoint {
                self.save_checkpoint(dir)?;
            }
        }
        on_event(&Event::Finished {
            reason: format!("{} epochs", self.options.epochs),
            validation_loss: self.progress.best.unwrap_or(f64::NAN),
        });
        Ok(())
    }

    fn save_checkpoint(&self, dir: &Path) -> Result<()> {
        let mut files = lora::to_files(&self.model, &self.lora, Some(&self.progress.base))?;
        let (state, _) = self.opt.state();
        files.push((OPTIMIZER, safetensors_bytes(&state)?));
        let progress = serde_json::to_vec_pretty(&self.progress)
            .map_err(|e| Error::invalid("progress", e.to_string()))?;
        files.push((PROGRESS, progress));
        Ok(save_files(dir, &files)?)
    }

    /// Saves the adapter in PEFT's format into `dir` (checksummed, written atomically).
    pub fn save_adapter(&self, dir: &Path) -> Result<()> {
        save_adapter(&self.model, &self.lora, &self.progress.base, dir)
    }
}

/// Saves the adapters of `model` in PEFT's format into `dir` (checksummed, written
/// atomically), naming `base` as their base model.
pub fn save_adapter(model: &Model, config: &LoraConfig, base: &str, dir: &Path) -> Result<()> {
    let files = lora::to_files(model, config, Some(base))?;
    Ok(save_files(dir, &files)?)
}

fn adam(options: &TrainOptions) -> AdamWConfig {
    let mut c = AdamWConfig::default();
    (c.lr, c.beta2, c.weight_decay) = (options.lr, 0.999, 0.0);
    c
}
