//! Scores drum continuations on the GMD test split: human drummers, repeat-the-prompt,
//! random at human density, the offline local model, and any other backend.
//!
//! `cargo run --release --example evaluate -- ../shared/datasets/groove --out eval/` writes
//! `eval/results.md`, `eval/results.json`, `eval/stability.svg`, a piano roll per piece
//! in `eval/pictures/`, recordings in `eval/audio/`, and `eval/report.html` over them all.
//! Model outputs are saved in `eval/outputs/` as they arrive, and a rerun reuses them, so
//! an interrupted run loses nothing. The protocol is `fine_drums_eval::Protocol`; this file
//! reads and writes files around it.

use std::path::Path;
use std::{error::Error, path::PathBuf, time::Instant};

use clap::Parser;
use fine_drums_backends::{Kind, Settings};
use fine_drums_dataset::{Split, cl100k};
use fine_drums_eval::fs::{self, FolderCache};
use fine_drums_eval::{Protocol, System};
use fine_drums_markov::{Markov, Model};

use crate::{At, Renderer, progress};

/// Score drum continuations on the GMD test split against human drummers and baselines.
#[derive(Parser)]
#[command(version)]
pub struct Args {
    /// The GMD folder (with info.csv).
    gmd: PathBuf,
    /// Where to write results, pictures and model outputs.
    #[arg(long, default_value = "eval")]
    out: PathBuf,
    #[command(flatten)]
    backend: crate::BackendArgs,
    /// The manifest of the fine-tuned model's training data (default: default settings).
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// A file listing GMD midi_filename values, one per line: only these pieces.
    #[arg(long)]
    pieces: Option<PathBuf>,
    /// Prompt bars.
    #[arg(long, default_value_t = 2)]
    prompt_bars: usize,
    /// Bars to generate (windows need this many bars after the prompt).
    #[arg(long, default_value_t = 14)]
    bars: usize,
    /// Score outputs of another tool: NAME=DIR, DIR holding PIECE.txt in the drumroll
    /// format (prompt bars first, or the continuation alone). Repeatable.
    #[arg(long, value_parser = name_and_dir)]
    import: Vec<(String, PathBuf)>,
    /// ours (the default); paper: Zhang & Callison-Burch 2023's analysis, on their
    /// published outputs (--import NAME=DIR, as published) and the GMD made text their way;
    /// controls: how the drum GPT follows intensity, fills and style (controls.md); infill:
    /// how it writes bars 5-8 between 1-4 and 9-12 (infill.md).
    #[arg(long, default_value = "ours", value_parser = ["ours", "paper", "controls", "infill"])]
    protocol: String,
    #[command(flatten)]
    sampling: crate::SamplingArgs,
    #[command(flatten)]
    audio: AudioArgs,
    /// Base seed; piece i uses seed + i.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Onset-matching tolerance in ticks at 480 per quarter (default: half a 16th).
    #[arg(long, default_value_t = 60)]
    tolerance: i64,
    /// The split to score: test (to report) or validation (to choose settings on).
    #[arg(long, default_value = "test", value_parser = ["test", "validation"])]
    split: String,
}

/// Runs the evaluation and writes its results, keeping every model output as it arrives.
pub fn run(args: Args) -> Result<(), Box<dyn Error>> {
    if args.protocol == "paper" {
        return paper(&args.gmd, &args.import, &args.out);
    }
    let started = Instant::now();
    let mut manifest = crate::manifest(args.manifest.as_deref(), None)?;
    (manifest.windows.prompt_bars, manifest.windows.completion_bars) =
        (args.prompt_bars, args.bars);
    let mut protocol = Protocol::of_manifest(&manifest);
    (protocol.seed, protocol.tolerance) = (args.seed, args.tolerance);
    protocol.split = if args.split == "validation" { Split::Validation } else { Split::Test };
    protocol.only = args.pieces.as_deref().map(fs::read_list).transpose()?;
    let mut progress = progress_bars();
    let data = fs::read_data(&protocol, &args.gmd, &cl100k()?, &mut progress)?;
    let (n, p, c) = (data.pieces().len(), args.prompt_bars, args.bars);
    eprintln!("{n} pieces of {p} + {c} bars from the {} split", args.split);
    if args.protocol == "controls" || args.protocol == "infill" {
        return steered(&args, &manifest, data.pieces(), started);
    }

    // The local model (trained on the train split, or --model), then the --backend openai one.
    let settings = args.backend.settings()?;
    let local_model = match settings.markov_model()? {
        Some(m) => m,
        None => Model::from_pairs(&protocol.template, data.train_pairs())?,
    };
    let mut eval_manifest = manifest.clone();
    eval_manifest.template.strip_silence = false;
    let local = Markov::new(protocol.template.clone());
    local.insert_model("gmd-train", local_model);
    let local = Box::new(local);
    let sampling = args.sampling.of(&Settings::of(Kind::Markov));
    let mut systems: Vec<Box<dyn System>> =
        vec![Box::new(continuing("local", "gmd-train".into(), local, &eval_manifest, sampling)?)];
    let offline = matches!(settings.kind, Kind::Gpt | Kind::Lora);
    if settings.kind != Kind::Markov {
        let extra = crate::Completer::of(&settings, args.manifest.as_deref())?;
        let name =
            if offline { settings.kind.to_string() } else { format!("openai:{}", extra.model) };
        let sampling = args.sampling.of(&settings);
        let gpt = continuing(&name, extra.model, extra.backend, &eval_manifest, sampling)?;
        systems.push(Box::new(gpt));
    }
    let read = |(n, d): &(String, PathBuf)| fs::read_import(n, d, data.pieces());
    let imports = args.import.iter().map(read).collect::<Result<Vec<_>, _>>()?;
    let mut cache = FolderCache::new(args.out.join("outputs"));
    let outputs = cache.folder().display().to_string();
    let evaluation = protocol
        .run(&data, &mut systems, &imports, &mut cache, &mut progress)
        .map_err(|e| format!("{e} (outputs so far are kept in {outputs}; rerun to go on)"))?;
    let recorded = args.audio.record(&evaluation, &args.out)?;
    evaluation.write(&args.out)?;
    print!("{}", evaluation.markdown());
    let (out, secs) = (args.out.display(), started.elapsed().as_secs_f64());
    println!("\nwrote {out} ({recorded} recordings; open {out}/report.html) in {secs:.1} s");
    Ok(())
}

/// `--protocol controls` and `--protocol infill` (see [`crate::steering`]).
fn steered(
    args: &Args,
    manifest: &fine_drums_dataset::Manifest,
    pieces: &[fine_drums_eval::Piece],
    started: Instant,
) -> Result<(), Box<dyn Error>> {
    let settings = args.backend.settings()?;
    let completer = crate::Completer::of(&settings, args.manifest.as_deref())?;
    let index = fine_drums_dataset::fs::read_index(&args.gmd)?;
    let mut styles: Vec<String> = index
        .entries
        .iter()
        .filter(|e| e.split == Split::Train)
        .filter_map(|e| e.genre().map(str::to_string))
        .collect();
    styles.sort();
    styles.dedup();
    let run = crate::steering::Run {
        backend: completer.backend.as_ref(),
        model: &completer.model,
        template: &manifest.template,
        prompt_bars: args.prompt_bars,
        sampling: if args.protocol == "infill" {
            args.sampling.of_infill(&settings)
        } else {
            args.sampling.of(&settings)
        },
        seed: args.seed,
    };
    let (name, md) = if args.protocol == "controls" {
        ("controls.md", crate::steering::controls(&run, pieces, &index, &styles)?)
    } else {
        ("infill.md", crate::steering::infill(&run, pieces, &index)?)
    };
    std::fs::create_dir_all(&args.out).at(&args.out)?;
    let path = args.out.join(name);
    fine_drums_dataset::fs::write_atomic(&path, md.as_bytes())?;
    print!("{md}");
    println!("\nwrote {} in {:.1} s", path.display(), started.elapsed().as_secs_f64());
    Ok(())
}

/// The recordings behind `evaluate`'s report.
#[derive(clap::Args, Debug, Clone)]
pub struct AudioArgs {
    /// Record the first N pieces for the report's players: each system's prompt and
    /// continuation as WAV (about 1.5 MB a piece and system at 22.05 kHz); 0 for none.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub audio: usize,
    /// Samples a second of those recordings.
    #[arg(long, default_value_t = 22_050)]
    pub audio_rate: u32,
    /// Render them through this General MIDI SoundFont (.sf2) instead of the built-in kit.
    #[arg(long)]
    pub soundfont: Option<PathBuf>,
}

impl AudioArgs {
    /// Writes the recordings under `out` (at `fine_drums_eval::fs::audio_path`); how many.
    pub fn record(
        &self,
        evaluation: &fine_drums_eval::Evaluation,
        out: &Path,
    ) -> Result<usize, Box<dyn Error>> {
        if self.audio == 0 {
            return Ok(0);
        }
        let renderer = Renderer::new(self.audio_rate, self.soundfont.as_deref())?;
        let mut written = 0;
        for piece in evaluation.played.iter().take(self.audio) {
            for (system, groove) in &piece.systems {
                let path = fine_drums_eval::fs::audio_path(out, &piece.id, system);
                renderer.write_wav(groove, &path)?;
                written += 1;
            }
        }
        Ok(written)
    }
}

/// `NAME=DIR`, as `--import` takes it.
pub fn name_and_dir(spec: &str) -> Result<(String, PathBuf), String> {
    let (name, dir) = spec.split_once('=').ok_or(format!("takes NAME=DIR, not {spec:?}"))?;
    Ok((name.to_string(), PathBuf::from(dir)))
}

/// `evaluate --protocol paper`: the paper's table from the GMD and their published outputs,
/// printed and written to `<out>/results.md` and `<out>/report.html`.
pub fn paper(gmd: &Path, imports: &[(String, PathBuf)], out: &Path) -> Result<(), Box<dyn Error>> {
    let rows = fine_drums_eval::fs::read_paper(gmd, imports)?;
    let table = fine_drums_eval::paper::markdown(&rows);
    std::fs::create_dir_all(out).at(out)?;
    fine_drums_dataset::fs::write_atomic(&out.join("results.md"), table.as_bytes())?;
    let html = fine_drums_eval::paper::html(&rows);
    fine_drums_dataset::fs::write_atomic(&out.join("report.html"), html.as_bytes())?;
    println!("{table}");
    Ok(())
}

/// A progress bar per system of an evaluation (and for reading the data), each cleared
/// when it is full.
pub fn progress_bars() -> impl FnMut(fine_drums_eval::Progress<'_>) {
    let mut bars = std::collections::HashMap::new();
    move |p: fine_drums_eval::Progress<'_>| {
        let bar = bars.entry(p.system.to_string());
        let bar = bar.or_insert_with(|| progress(p.total as u64, p.system));
        bar.set_position(p.done as u64);
        if p.done == p.total {
            bar.finish_and_clear();
        }
    }
}

/// A backend behind the continuation pipeline, as the protocol sees it: it continues a
/// piece's prompt as `continue` would, with the protocol's seed, and scores the drummer's
/// continuation when the backend can.
pub fn continuing(
    name: &str,
    model: String,
    backend: Box<dyn fine_drums_llm::Complete>,
    manifest: &fine_drums_dataset::Manifest,
    (temperature, top_p): (f32, f32),
) -> Result<impl fine_drums_eval::System + use<>, Box<dyn Error>> {
    use fine_drums_codec::midi::{self, WriteOptions};
    use fine_drums_continue::{ContinueOptions, continue_midi};
    use fine_drums_eval::{BoxError, Generated, Piece, system};
    use std::rc::Rc;
    let runtime = Rc::new(tokio::runtime::Builder::new_current_thread().enable_all().build()?);
    let (manifest, backend) = (manifest.clone(), Rc::new(backend));
    let (rt, scorer, scored) = (runtime.clone(), backend.clone(), model.clone());
    let generate = move |piece: &Piece, bars, seed| -> Result<Generated, BoxError> {
        let mut options = ContinueOptions::new(&model);
        (options.bars, options.temperature, options.top_p) = (bars, temperature, top_p);
        options.seed = Some(seed);
        let midi = midi::write(&piece.prompt, &WriteOptions::default())?;
        let out = runtime.block_on(continue_midi(&midi, &manifest, backend.as_ref(), &options))?;
        let continuation = out.groove.slice(manifest.windows.prompt_bars..out.groove.bars.len());
        Ok(Generated::new(out.report.samples, continuation))
    };
    Ok(system(name, generate)
        .scoring(move |prompt, truth| Ok(rt.block_on(scorer.nll_per_bar(&scored, prompt, truth))?)))
}
