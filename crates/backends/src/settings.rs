//! What a backend is built from, and building it: for completion or for fine-tuning.

use std::path::{Path, PathBuf};
use std::time::Duration;

use fine_drums_dataset::Template;
use fine_drums_dataset::fs::{MAX_MODEL_FILE, read_model_file};
use fine_drums_llm::{Complete, Endpoint, FineTune};
use fine_drums_markov::{Markov, Model, PROMPT_MODEL};

use crate::error::{Error, Result};
use crate::kind::Kind;

/// What a backend is built from, as a command line gives it.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Settings {
    /// Which backend. Default: the drum GPT.
    pub kind: Kind,
    /// The model.
    ///
    /// - gpt: a model folder from fine-tuning (default: the built-in `drums-small-gmd`);
    ///   as a base to fine-tune, a preset name is not needed (see [`Training::preset`]).
    /// - markov: `local` (the prompt's own statistics, the default) or a trained `.fdlm` file.
    /// - lora: the adapter folder to continue with, or the pretrained model's folder to
    ///   fine-tune.
    /// - openai: the model's name, which it needs to complete (to fine-tune, the default is
    ///   the first chat model OpenAI fine-tunes).
    pub model: Option<String>,
    /// The base URL of an OpenAI-compatible API (openai). Default: `OPENAI_BASE_URL`, else
    /// OpenAI's.
    pub base_url: Option<String>,
    /// HTTP retries per request (openai). Default: the backend's (4).
    pub max_retries: Option<u32>,
    /// How long one HTTP request may take (openai). Default: the backend's (120 s).
    pub timeout: Option<Duration>,
    /// How long to wait between two looks at a running job (openai). Default: 10 s.
    pub poll_interval: Option<Duration>,
    /// Send the key over plain http to a host off loopback (openai). Default: `false`.
    pub allow_insecure_key: bool,
    /// Which endpoint completes (openai). Default: chat for chat models, else completions.
    pub endpoint: Endpoint,
    /// Sample among the k likeliest steps only (gpt, markov; 0 = all). Default: 0.
    pub top_k: usize,
    /// Where the offline backends save the models they train. Default: kept in memory.
    pub models_dir: Option<PathBuf>,
    /// Train on the first CUDA GPU (gpt, lora; needs the crate's `cuda` feature). Default:
    /// the CPU.
    pub cuda: bool,
    /// How the offline backends train.
    pub training: Training,
}

/// How the offline backends train: what a command line may change of each one's defaults.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Training {
    /// The drum GPT's size: `tiny`, `small` (the default) or `base`.
    pub preset: String,
    /// LoRA's rank. Default: 8.
    pub lora_rank: usize,
    /// LoRA's alpha: updates are scaled by alpha / rank. Default: 16.
    pub lora_alpha: f64,
    /// Dropout on the adapters' input while training. Default: 0.05.
    pub lora_dropout: f32,
    /// The modules that get adapters (empty: every attention and feed-forward projection).
    pub lora_targets: Vec<String>,
    /// The longest LoRA training example, in the base model's tokens. Default: 1,024.
    pub max_tokens: usize,
    /// The drum GPT's dropout in training; `None`: its default (0, as the built-in model
    /// was trained).
    pub dropout: Option<f32>,
}

impl Default for Training {
    fn default() -> Training {
        Training {
            preset: "small".into(),
            lora_rank: 8,
            lora_alpha: 16.0,
            lora_dropout: 0.05,
            lora_targets: Vec::new(),
            max_tokens: 1024,
            dropout: None,
        }
    }
}

/// A backend that continues prompts, the model to ask it for, and the template the model
/// was trained with (its prompts must be built the same way).
#[non_exhaustive]
pub struct Completer {
    /// The backend.
    pub backend: Box<dyn Complete>,
    /// The model's name there.
    pub model: String,
    /// The template of the model's training, when the model brings one.
    pub template: Option<Template>,
}

impl std::fmt::Debug for Completer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Completer").field("model", &self.model).finish_non_exhaustive()
    }
}

impl Settings {
    /// Settings for `kind`, with every other setting at its default.
    pub fn of(kind: Kind) -> Settings {
        Settings { kind, ..Settings::default() }
    }

    /// The model to continue with: the one named, else the kind's default (the built-in
    /// drum GPT, or `local` for the Markov model). LoRA and OpenAI have none.
    pub fn model_name(&self) -> Result<String> {
        if let Some(m) = &self.model {
            return Ok(m.clone());
        }
        match self.kind {
            Kind::Gpt => gpt::default_model(),
            Kind::Markov => Ok(PROMPT_MODEL.to_string()),
            Kind::Lora => Err(self
                .setting("needs a model: an adapter folder (fine_tune --backend lora writes one)")),
            Kind::OpenAi => Err(self.setting(
                "needs a model (e.g. ft:babbage-002:org:drums:id, or one your server serves)",
            )),
        }
    }

    /// The model to fine-tune: the one named, else the kind's default base (the drum GPT's
    /// preset, the Markov model, the first chat model OpenAI fine-tunes). LoRA needs the
    /// pretrained model's folder.
    pub fn base_model(&self) -> Result<String> {
        if let Some(m) = &self.model {
            return Ok(m.clone());
        }
        match self.kind {
            Kind::Gpt => gpt::base_model(),
            Kind::Markov => Ok(PROMPT_MODEL.to_string()),
            Kind::Lora => Err(self.setting(
                "needs the pretrained model to train on: a Hugging Face folder (config.json, *.safetensors, tokenizer.json)",
            )),
            Kind::OpenAi => openai::first_chat_model(),
        }
    }

    /// The sampling the kind continues with by default: `(temperature, top_p)`. The drum
    /// GPT's were chosen on the GMD's validation split; the others sample as they are.
    pub fn sampling(&self) -> (f32, f32) {
        match self.kind {
            Kind::Gpt => gpt::sampling(),
            _ => (1.0, 1.0),
        }
    }

    /// The sampling the kind writes bars between others with by default (an infill): the
    /// drum GPT's temperature there was chosen on the GMD's validation split as the one
    /// whose seam into the bars after came nearest the drummers'.
    pub fn infill_sampling(&self) -> (f32, f32) {
        match self.kind {
            Kind::Gpt => (gpt::infill_temperature(), gpt::sampling().1),
            _ => (1.0, 1.0),
        }
    }

    /// The trained Markov model the settings name, read from its file: `None` for the model
    /// `local` and for other backends.
    pub fn markov_model(&self) -> Result<Option<Model>> {
        match (&self.model, self.kind) {
            (Some(path), Kind::Markov) if path != PROMPT_MODEL => {
                let bytes = read_model_file(Path::new(path), MAX_MODEL_FILE)
                    .map_err(|e| fine_drums_llm::Error::model_from(path, e.to_string(), e))?;
                Ok(Some(Model::from_bytes(path, &bytes)?))
            }
            _ => Ok(None),
        }
    }

    /// The backend that continues with the model the settings name, the model loaded (read
    /// from its file or folder once, here) and registered under its name. Its prompts are
    /// built with `template`, when given (a manifest's); else with the model's own, else
    /// the default.
    pub fn completer(&self, template: Option<&Template>) -> Result<Completer> {
        self.kind.check_built()?;
        let model = self.model_name()?;
        match self.kind {
            Kind::Gpt => gpt::completer(self, model, template),
            Kind::Lora => lora::completer(model, template),
            Kind::Markov => {
                let trained = self.markov_model()?;
                let own = trained.as_ref().map(|m| m.template().clone());
                let template = template.or(own.as_ref()).cloned().unwrap_or_default();
                let markov = self.markov(&template);
                if let Some(m) = trained {
                    markov.insert_model(model.clone(), m);
                }
                Ok(Completer { backend: Box::new(markov), model, template: own })
            }
            Kind::OpenAi => {
                let template = template.cloned().unwrap_or_default();
                Ok(Completer { backend: openai::complete(self, &template)?, model, template: None })
            }
        }
    }

    /// A backend that fine-tunes on files prepared with `template` (base models from
    /// [`base_model`](Settings::base_model)).
    pub fn fine_tuner(&self, template: &Template) -> Result<Box<dyn FineTune>> {
        self.kind.check_built()?;
        match self.kind {
            Kind::Gpt => gpt::fine_tuner(self, template),
            Kind::Lora => lora::fine_tuner(self, &self.base_model()?, template),
            Kind::Markov => Ok(Box::new(self.markov(template))),
            Kind::OpenAi => openai::fine_tune(self, template),
        }
    }

    /// The Markov backend of these settings (their top-k, and where it saves what it trains)
    /// for prompts built with `template`.
    pub fn markov(&self, template: &Template) -> Markov {
        let markov = Markov::new(template.clone()).with_top_k(self.top_k);
        match &self.models_dir {
            Some(dir) => markov.with_models_dir(dir),
            None => markov,
        }
    }

    /// The drum GPT backend of these settings (their top-k, device, and where it saves what
    /// it trains) for prompts built with `template`, training with `options` (the preset of
    /// [`Training`] is set in them).
    #[cfg(feature = "gpt")]
    pub fn gpt(
        &self,
        template: &Template,
        mut options: fine_drums_gpt::train::TrainOptions,
    ) -> Result<fine_drums_gpt::Gpt> {
        options.preset = self.training.preset.clone();
        if let Some(rate) = self.training.dropout {
            options.dropout = rate;
        }
        let gpt = fine_drums_gpt::Gpt::new(template.clone(), options)
            .with_top_k(self.top_k)
            .with_device(gpt::device(self)?);
        Ok(match &self.models_dir {
            Some(dir) => gpt.with_models_dir(dir),
            None => gpt,
        })
    }

    /// The training seed a job of these settings uses when its request names none.
    pub fn default_seed(&self) -> Option<u64> {
        match self.kind {
            Kind::Gpt => gpt::default_seed(),
            Kind::Lora => lora::default_seed(),
            _ => None,
        }
    }

    fn setting(&self, message: &str) -> Error {
        Error::Setting { kind: self.kind.as_str(), message: message.to_string() }
    }
}

/// The drum GPT, when built.
#[cfg(feature = "gpt")]
mod gpt {
    use super::*;

    pub fn default_model() -> Result<String> {
        Ok(fine_drums_gpt::EMBEDDED.to_string())
    }

    pub fn base_model() -> Result<String> {
        Ok(fine_drums_gpt::BASE_MODEL.to_string())
    }

    fn at(at: impl std::fmt::Display) -> impl FnOnce(fine_drums_gpt::Error) -> Error {
        move |source| Error::Gpt { at: at.to_string(), source: Box::new(source) }
    }

    pub fn sampling() -> (f32, f32) {
        (fine_drums_gpt::TEMPERATURE, fine_drums_gpt::TOP_P)
    }

    pub fn infill_temperature() -> f32 {
        fine_drums_gpt::INFILL_TEMPERATURE
    }

    pub fn default_seed() -> Option<u64> {
        Some(fine_drums_gpt::train::TrainOptions::default().seed)
    }

    pub fn device(settings: &Settings) -> Result<fine_drums_gpt::Device> {
        if settings.cuda {
            fine_drums_gpt::Device::new_cuda(0).map_err(|e| at("CUDA device 0")(e.into()))
        } else {
            Ok(fine_drums_gpt::Device::Cpu)
        }
    }

    pub fn completer(
        settings: &Settings,
        name: String,
        template: Option<&Template>,
    ) -> Result<Completer> {
        let cpu = fine_drums_gpt::Device::Cpu;
        let model = match &settings.model {
            None => fine_drums_gpt::Model::embedded(&cpu).map_err(at(fine_drums_gpt::EMBEDDED))?,
            Some(dir) => fine_drums_gpt::Model::load(Path::new(dir), &cpu).map_err(at(dir))?,
        };
        let own = model.template.clone();
        let gpt = settings.gpt(template.unwrap_or(&own), Default::default())?;
        gpt.insert_model(name.clone(), model);
        Ok(Completer { backend: Box::new(gpt), model: name, template: Some(own) })
    }

    pub fn fine_tuner(settings: &Settings, template: &Template) -> Result<Box<dyn FineTune>> {
        Ok(Box::new(settings.gpt(template, Default::default())?))
    }
}

#[cfg(not(feature = "gpt"))]
mod gpt {
    use super::*;

    fn not_built() -> Error {
        Error::NotBuilt { kind: Kind::Gpt.as_str(), feature: "gpt" }
    }

    pub fn default_model() -> Result<String> {
        Err(not_built())
    }

    pub fn base_model() -> Result<String> {
        Err(not_built())
    }

    pub fn sampling() -> (f32, f32) {
        (1.0, 1.0)
    }

    pub fn infill_temperature() -> f32 {
        1.0
    }

    pub fn default_seed() -> Option<u64> {
        None
    }

    pub fn completer(_: &Settings, _: String, _: Option<&Template>) -> Result<Completer> {
        Err(not_built())
    }

    pub fn fine_tuner(_: &Settings, _: &Template) -> Result<Box<dyn FineTune>> {
        Err(not_built())
    }
}

/// LoRA, when built.
#[cfg(feature = "lora")]
mod lora {
    use super::*;

    fn at(at: impl std::fmt::Display) -> impl FnOnce(fine_drums_lora::Error) -> Error {
        move |source| Error::Lora { at: at.to_string(), source: Box::new(source) }
    }

    pub fn default_seed() -> Option<u64> {
        Some(fine_drums_lora::train::TrainOptions::default().seed)
    }

    /// LoRA builds its prompts with the template its adapter was trained with.
    pub fn completer(dir: String, _: Option<&Template>) -> Result<Completer> {
        let lora = fine_drums_lora::Lora::new(Default::default(), Default::default());
        lora.load(Path::new(&dir), None).map_err(at(&dir))?;
        let own = lora.template(&dir);
        Ok(Completer { backend: Box::new(lora), model: dir, template: own })
    }

    pub fn fine_tuner(
        settings: &Settings,
        base: &str,
        template: &Template,
    ) -> Result<Box<dyn FineTune>> {
        let t = &settings.training;
        let config = fine_drums_lora::Config::load(Path::new(base)).map_err(at(base))?;
        let mut lora = fine_drums_lora::LoraConfig::for_arch(config.arch);
        (lora.r, lora.lora_alpha, lora.lora_dropout) = (t.lora_rank, t.lora_alpha, t.lora_dropout);
        if !t.lora_targets.is_empty() {
            lora.target_modules = t.lora_targets.clone();
        }
        lora.check().map_err(at(base))?;
        let mut options = fine_drums_lora::train::TrainOptions::default();
        (options.lora, options.max_tokens) = (Some(lora), t.max_tokens);
        let device = if settings.cuda {
            fine_drums_lora::Device::new_cuda(0).map_err(|e| at("CUDA device 0")(e.into()))?
        } else {
            fine_drums_lora::Device::Cpu
        };
        let lora = fine_drums_lora::Lora::new(template.clone(), options).with_device(device);
        Ok(Box::new(match &settings.models_dir {
            Some(dir) => lora.with_models_dir(dir),
            None => lora,
        }))
    }
}

#[cfg(not(feature = "lora"))]
mod lora {
    use super::*;

    pub fn default_seed() -> Option<u64> {
        None
    }

    pub fn completer(_: String, _: Option<&Template>) -> Result<Completer> {
        Err(Error::NotBuilt { kind: Kind::Lora.as_str(), feature: "lora" })
    }

    pub fn fine_tuner(_: &Settings, _: &str, _: &Template) -> Result<Box<dyn FineTune>> {
        Err(Error::NotBuilt { kind: Kind::Lora.as_str(), feature: "lora" })
    }
}

/// The OpenAI client, when built.
#[cfg(feature = "openai")]
mod openai {
    use super::*;
    use fine_drums_openai::{ChatTemplate, Config, OpenAi};

    pub fn first_chat_model() -> Result<String> {
        Ok(fine_drums_openai::CHAT_FINE_TUNABLE[0].to_string())
    }

    fn client(settings: &Settings, template: &Template) -> Result<OpenAi> {
        let mut config = Config::from_env_for(settings.base_url.as_deref())?;
        config.allow_insecure_key = settings.allow_insecure_key;
        config.endpoint = settings.endpoint;
        config.chat = ChatTemplate::of(template);
        if let Some(n) = settings.max_retries {
            config.retry.max_retries = n;
        }
        if let Some(t) = settings.timeout {
            config.retry.timeout = t;
        }
        if let Some(p) = settings.poll_interval {
            config.poll_interval = p;
        }
        Ok(OpenAi::new(config)?)
    }

    pub fn complete(settings: &Settings, template: &Template) -> Result<Box<dyn Complete>> {
        Ok(Box::new(client(settings, template)?))
    }

    pub fn fine_tune(settings: &Settings, template: &Template) -> Result<Box<dyn FineTune>> {
        Ok(Box::new(client(settings, template)?))
    }
}

#[cfg(not(feature = "openai"))]
mod openai {
    use super::*;

    fn not_built() -> Error {
        Error::NotBuilt { kind: Kind::OpenAi.as_str(), feature: "openai" }
    }

    pub fn first_chat_model() -> Result<String> {
        Err(not_built())
    }

    pub fn complete(_: &Settings, _: &Template) -> Result<Box<dyn Complete>> {
        Err(not_built())
    }

    pub fn fine_tune(_: &Settings, _: &Template) -> Result<Box<dyn FineTune>> {
        Err(not_built())
    }
}
