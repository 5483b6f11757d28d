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
use fine_drums_continue::{ContinueOptions, continue_midi, infill_midi};

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
    /// Bars to add (a number), or bars to write again between the others (`5-8`, from 1:
    /// an infill, which keeps every other bar as it was).
    #[arg(long, default_value = "14", value_parser = parse_bars)]
    bars: Bars,
    /// The style of the new bars (drum GPT): a GMD genre such as rock, funk, jazz, latin,
    /// hiphop (an unknown one is an error that lists the model's).
    #[arg(long)]
    style: Option<String>,
    /// The tempo the model should play as if at, in BPM (drum GPT; default: left to the
    /// model). The output keeps the file's own tempo.
    #[arg(long)]
    tempo: Option<f64>,
    /// Intensity of the new bars, 1 (sparse, soft) to 5 (dense, loud): one number for every
    /// bar, or one per new bar (`2,2,3,4`; `-` leaves a bar free). Default: free.
    #[arg(long, value_parser = parse_intensity)]
    intensity: Option<Intensity>,
    /// Bars that are fills, numbered as in the output file from 1 (`8,16`); the other new
    /// bars are not. Default: left to the model.
    #[arg(long, value_delimiter = ',', conflicts_with = "fill_every")]
    fills: Vec<u64>,
    /// Every Nth bar of the output (bars N, 2N, …) that is new is a fill, the others not.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    fill_every: Option<u64>,
    /// How much of the drummer's feel (velocity and microtiming) the new bars get, 0 (on
    /// the grid) to 1.
    #[arg(long, default_value_t = 1.0, value_parser = parse_amount)]
    feel_amount: f32,
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

/// `--bars`: a count of bars to add, or a range of bars to write again.
#[derive(Clone, Copy, Debug)]
pub enum Bars {
    /// Bars to add after the prompt.
    Add(usize),
    /// Bars (from 1, both ends included) to write again.
    Infill(u64, u64),
}

fn parse_bars(s: &str) -> Result<Bars, String> {
    let number =
        |t: &str| t.trim().parse::<u64>().map_err(|_| format!("{t:?} is not a bar number"));
    match s.split_once('-') {
        None => Ok(Bars::Add(number(s)? as usize)),
        Some((a, b)) => {
            let (a, b) = (number(a)?, number(b)?);
            if a == 0 || b < a {
                return Err(format!("{s}: a range of bars from 1, first to last (5-8)"));
            }
            Ok(Bars::Infill(a, b))
        }
    }
}

/// `--intensity`: one value, or one per new bar (`None` leaves a bar free).
#[derive(Clone, Debug)]
pub struct Intensity(Vec<Option<u8>>);

fn parse_intensity(s: &str) -> Result<Intensity, String> {
    s.split(',')
        .map(|t| match t.trim() {
            "-" | "" => Ok(None),
            t => match t.parse::<u8>() {
                Ok(i) if (1..=5).contains(&i) => Ok(Some(i)),
                _ => Err(format!("intensity {t:?}: the model knows 1 to 5, or - for free")),
            },
        })
        .collect::<Result<_, _>>()
        .map(Intensity)
}

fn parse_amount(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(a) if (0.0..=1.0).contains(&a) => Ok(a),
        _ => Err(format!("{s}: an amount from 0 to 1")),
    }
}

/// The controls asked for, per new bar; `first` is the first new bar's number in the
/// output (from 1) and `count` how many there are. A fill bar that is not new is an error.
fn steer_of(args: &Args, first: u64, count: usize) -> Result<fine_drums_llm::Steer, String> {
    let mut steer = fine_drums_llm::Steer::default();
    (steer.style, steer.tempo) = (args.style.clone(), args.tempo);
    if let Some(Intensity(i)) = &args.intensity {
        steer.intensity = if i.len() == 1 { vec![i[0]; count] } else { i.clone() };
        if steer.intensity.len() > count {
            return Err(format!(
                "--intensity gives {} bars, but {count} new bar{} are written",
                steer.intensity.len(),
                if count == 1 { "" } else { "s" }
            ));
        }
    }
    let last = first + count as u64 - 1;
    if let Some(&bad) = args.fills.iter().find(|&&b| b < first || b > last) {
        return Err(format!(
            "--fills {bad}: the new bars are {first}-{last}; a fill bar must be one of them"
        ));
    }
    let fill = |b: u64| match args.fill_every {
        Some(n) => b.is_multiple_of(n),
        None => args.fills.contains(&b),
    };
    if !args.fills.is_empty() || args.fill_every.is_some() {
        steer.fills = (first..=last).map(|b| Some(fill(b))).collect();
    }
    Ok(steer)
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
    let in_file = manifest.template.read_all(&midi).at(&args.input)?.bars.len();
    let (first, count) = match args.bars {
        Bars::Add(n) => {
            let from = args.from_bar.map_or(in_file as u64 + 1, |b| b.min(in_file as u64 + 1));
            (from, n)
        }
        Bars::Infill(a, b) => {
            if args.from_bar.is_some() {
                return Err(
                    "--from-bar continues; --bars A-B writes bars in between: give one".into()
                );
            }
            (a, (b - a + 1) as usize)
        }
    };
    if count == 0 {
        return Err("--bars: at least one bar".into());
    }
    options.steer = steer_of(&args, first, count).at(&args.input)?;
    options.feel_amount = args.feel_amount;
    (options.bars, options.prompt_bars) = (count, args.prompt_bars);
    options.from_bar = args.from_bar.map(|n| n as usize - 1);
    options.humanise = !args.on_grid;
    (options.temperature, options.top_p) = match args.bars {
        Bars::Add(_) => args.sampling.of(&settings),
        Bars::Infill(..) => args.sampling.of_infill(&settings),
    };
    let seed = args.seed.unwrap_or_else(crate::clock_seed);
    (options.samples, options.seed, options.attempts) = (args.samples, Some(seed), args.attempts);
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().at("async runtime")?;
    let out = match args.bars {
        Bars::Add(_) => {
            runtime.block_on(continue_midi(&midi, &manifest, backend.as_ref(), &options))
        }
        Bars::Infill(a, b) => {
            let range = (a - 1) as usize..b as usize;
            runtime.block_on(infill_midi(&midi, &manifest, backend.as_ref(), &options, range))
        }
    }
    .at(&args.input)?;
    fine_drums_dataset::fs::write_atomic(&path, &out.midi)?;
    let r = &out.report;
    let bars = |n: usize| format!("{n} bar{}", if n == 1 { "" } else { "s" });
    let (first, last) = (r.prompt_start + 1, r.prompt_start + r.prompt_bars);
    let prompt = if first == last { format!("bar {last}") } else { format!("bars {first}-{last}") };
    if let Bars::Infill(a, b) = args.bars {
        println!(
            "{}: bars {a}-{b} written again by {model_name} after a prompt of {prompt}, every other bar kept ({} request{}; seed {seed}) -> {} in {:.2} s",
            args.input.display(),
            r.requests,
            if r.requests == 1 { "" } else { "s" },
            path.display(),
            started.elapsed().as_secs_f64()
        );
    } else {
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
    }
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
