//! Continues a drum MIDI file with a language model, after its last bar.
//!
//! `cargo run --release --example continue -- examples/grooves/rock.mid` uses the built-in
//! drum GPT (no key, no network) and writes `examples/grooves/rock.continued.mid`: every bar
//! of the input, then 14 new ones. `--backend local` uses the Markov model; `--backend openai
//! --model ft:...` uses OpenAI or, with `--base-url`, any OpenAI-compatible server.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::At;
use clap::Parser;
use fine_drums_continue::{ContinueOptions, continue_midi};

/// Continue a drum groove: the last bars of a MIDI file go to a model, and the file comes
/// back with the model's bars after its own, as a MIDI file that plays in any DAW.
#[derive(Parser)]
#[command(version)]
pub struct Args {
    /// The MIDI file to continue.
    input: PathBuf,
    /// Where to write the result (default: <input>.continued.mid beside the input).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Overwrite the output if it exists.
    #[arg(long)]
    force: bool,
    /// Also render the result (every bar) to this WAV file, with the built-in drum kit.
    #[arg(long)]
    wav: Option<PathBuf>,
    /// Render --wav through this General MIDI SoundFont (.sf2) instead of the built-in kit.
    #[arg(long, requires = "wav")]
    soundfont: Option<PathBuf>,
    /// Also draw the result as a piano roll in this SVG file: the input shaded, bars
    /// numbered, beat lines, a row per drum, loudness as shade.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Leave the new bars on the grid at the format's loudness levels, without a drummer's
    /// velocity and microtiming.
    #[arg(long)]
    on_grid: bool,
    /// MIDI channel of the drums, 1 to 16 (default: the manifest's, 10).
    #[arg(long)]
    channel: Option<u8>,
    /// Read the MIDI file as players do: ignore bytes after the last track that are not a
    /// chunk, and continue running status after meta and system exclusive events.
    #[arg(long)]
    lenient: bool,
    /// Bars of prompt: the last bars before the new ones (default: what the model was
    /// trained with).
    #[arg(long)]
    prompt_bars: Option<usize>,
    /// Start the new bars at this bar (from 1) instead of after the last: the bars before it
    /// are kept, the rest replaced.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    from_bar: Option<u64>,
    #[command(flatten)]
    backend: crate::BackendArgs,
    /// The manifest.json written by `prepare`, so that prompts are built as in training
    /// (default: the default settings, or those of the local model file).
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// Bars to add.
    #[arg(long, default_value_t = 14)]
    bars: usize,
    #[command(flatten)]
    sampling: crate::SamplingArgs,
    /// Sample among the k likeliest steps only (local backend; 0 = all).
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    /// Samples per request; the best is kept.
    #[arg(long, default_value_t = 1)]
    samples: u32,
    /// Seed: the same seed gives the same output (OpenAI tries its best). Default: one drawn
    /// from the clock, and printed.
    #[arg(long)]
    seed: Option<u64>,
    /// Requests per window before giving up on a clean sample.
    #[arg(long, default_value_t = 3)]
    attempts: u32,
    /// HTTP retries per request (openai).
    #[arg(long, default_value_t = 4)]
    max_retries: u32,
    /// Seconds one HTTP request may take (openai).
    #[arg(long, default_value_t = 120)]
    timeout: u64,
}

fn default_out(input: &Path) -> PathBuf {
    let stem =
        input.file_stem().map_or_else(|| "groove".into(), |s| s.to_string_lossy().into_owned());
    input.with_file_name(format!("{stem}.continued.mid"))
}

/// Continues the file and writes the result (and the WAV and SVG asked for), never over a file that exists unless `--force`.
pub fn run(args: Args) -> Result<(), Box<dyn Error>> {
    let started = Instant::now();
    let midi = std::fs::read(&args.input).at(&args.input)?;
    let path = args.out.clone().unwrap_or_else(|| default_out(&args.input));
    for p in std::iter::once(&path).chain(&args.wav).chain(&args.svg) {
        if p.exists() && !args.force {
            return Err(format!("{} exists; --force overwrites it", p.display()).into());
        }
    }
    let mut settings = args.backend.settings()?;
    settings.max_retries = Some(args.max_retries);
    settings.timeout = Some(std::time::Duration::from_secs(args.timeout));
    settings.top_k = args.top_k;
    let crate::Completer { backend, model: model_name, mut manifest } =
        crate::Completer::of(&settings, args.manifest.as_deref())?;
    if let Some(c) = args.channel {
        manifest.template.codec.channel = fine_drums_codec::Channel::try_from(c)?;
    }
    let midi = if args.lenient {
        // Read as players do, then written as a file that reads strictly (losslessly: the
        // pipeline reads the same groove from it).
        use fine_drums_codec::midi::{self, ReadOptions, WriteOptions};
        let mut read = ReadOptions::lossless();
        (read.channel, read.lenient) = (manifest.template.codec.channel, true);
        let groove = midi::read(&midi, &read).at(&args.input)?;
        let mut write = WriteOptions::default();
        write.channel = read.channel;
        midi::write(&groove, &write).at(&args.input)?
    } else {
        midi
    };
    let mut options = ContinueOptions::new(&model_name);
    (options.bars, options.prompt_bars) = (args.bars, args.prompt_bars);
    options.from_bar = args.from_bar.map(|n| n as usize - 1);
    options.humanise = !args.on_grid;
    (options.temperature, options.top_p) = args.sampling.of(&settings);
    let seed = args.seed.unwrap_or_else(crate::clock_seed);
    (options.samples, options.seed, options.attempts) = (args.samples, Some(seed), args.attempts);
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().at("async runtime")?;
    let out = runtime
        .block_on(continue_midi(&midi, &manifest, backend.as_ref(), &options))
        .at(&args.input)?;
    fine_drums_dataset::fs::write_atomic(&path, &out.midi)?;
    let r = &out.report;
    let bars = |n: usize| format!("{n} bar{}", if n == 1 { "" } else { "s" });
    let (first, last) = (r.prompt_start + 1, r.prompt_start + r.prompt_bars);
    let prompt = if first == last { format!("bar {last}") } else { format!("bars {first}-{last}") };
    println!(
        "{}: {} kept + {} new bar{} after a prompt of {prompt}, from {} ({} via {}; {} request{}, {} tokens; seed {seed}) -> {} in {:.2} s",
        args.input.display(),
        bars(r.prompt_start + r.prompt_bars),
        r.bars_kept,
        if r.bars_kept == 1 { "" } else { "s" },
        model_name,
        if r.bars_kept == r.bars_asked {
            "all asked for".to_string()
        } else {
            format!("{} asked for", r.bars_asked)
        },
        args.backend.backend,
        r.requests,
        if r.requests == 1 { "" } else { "s" },
        r.usage.total(),
        path.display(),
        started.elapsed().as_secs_f64()
    );
    if let Some(wav) = &args.wav {
        let seconds =
            crate::Renderer::new(44_100, args.soundfont.as_deref())?.write_wav(&out.groove, wav)?;
        println!("{}: {seconds:.1} s of audio", wav.display());
    }
    if let Some(svg) = &args.svg {
        use fine_drums_codec::{Voice, VoiceMap};
        let map = VoiceMap::Gmd9;
        let names: Vec<String> = (0..map.len()).map(|v| map.name(Voice::new(v as u8))).collect();
        let title = format!("{} continued by {model_name} (seed {seed})", args.input.display());
        let groove = out.groove.with_voices(map)?;
        let kept = r.prompt_start + r.prompt_bars;
        let picture = fine_drums_eval::svg::piano_roll(&title, &names, kept, &[("", &groove)]);
        fine_drums_dataset::fs::write_atomic(svg, picture.as_bytes())?;
        println!("{}: a piano roll of {} bars", svg.display(), groove.bars.len());
    }
    let mut unmapped = [0; 128];
    r.unmapped.iter().for_each(|&(p, n)| unmapped[usize::from(p & 127)] = n);
    let map = manifest.template.codec.format.voices();
    crate::warn_unmapped(
        &format_args!("{} (kept, not in the prompt)", args.input.display()),
        map,
        &unmapped,
    );
    for d in &r.dropped {
        println!("  dropped: {d}");
    }
    if let Some(why) = &r.stopped_early {
        println!("  stopped early: {why}");
    }
    Ok(())
}
