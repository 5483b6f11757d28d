//! Lays the plugin out as `fine_drums.clap` and `fine_drums.vst3` for this platform.
//!
//! `cargo run --release -p fine-drums-plugin --example bundle` builds the plugin (release)
//! with this example and writes the bundles to `target/bundled`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use fine_drums_plugin::bundle;

/// Bundle the fine_drums plugin, built with this example (same profile), as CLAP and VST3.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Where the bundles go.
    #[arg(long, default_value = "target/bundled")]
    out: PathBuf,
    /// The plugin library to bundle (default: the one cargo built with this example).
    #[arg(long)]
    library: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    // This example is target/<profile>/examples/bundle; the library cargo built with it is
    // in target/<profile>/deps.
    let library = args.library.or_else(|| {
        let exe = std::env::current_exe().ok()?;
        Some(exe.parent()?.parent()?.join("deps").join(bundle::library_name()))
    });
    let Some(library) = library else {
        eprintln!("error: cannot tell where this example is; give --library");
        return ExitCode::FAILURE;
    };
    match bundle::write_bundles(&library, &args.out) {
        Ok(b) => {
            println!("CLAP: {}", b.clap.display());
            println!("VST3: {}", b.vst3.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
