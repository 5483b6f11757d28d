//! The plugin's bundles: the built library laid out as a CLAP plugin and a VST3 bundle, as
//! hosts look for them on Linux, macOS and Windows.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The name of the bundles (`fine_drums.clap`, `fine_drums.vst3`).
pub const BUNDLE_NAME: &str = "fine_drums";

/// The bundles written.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Bundles {
    /// The CLAP plugin: the library itself on Linux and Windows, a bundle folder on macOS.
    pub clap: PathBuf,
    /// The VST3 bundle folder.
    pub vst3: PathBuf,
    /// The library inside the VST3 bundle.
    pub vst3_library: PathBuf,
}

/// The file name of the plugin library that `cargo build -p fine-drums-plugin` writes on this
/// platform (`libfine_drums_plugin.so`, `libfine_drums_plugin.dylib`, `fine_drums_plugin.dll`).
pub fn library_name() -> String {
    format!("{}fine_drums_plugin{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX)
}

/// The VST3 architecture folder of this platform (`x86_64-linux`, `x86_64-win`, …) inside
/// `Contents`; `MacOS` on macOS.
fn vst3_arch() -> String {
    let arch = std::env::consts::ARCH;
    match std::env::consts::OS {
        "macos" => "MacOS".into(),
        "windows" => format!("{arch}-win"),
        os => format!("{arch}-{os}"),
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Write { path: path.to_path_buf(), source }
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    std::fs::copy(from, to).map(|_| ()).map_err(io(to))
}

/// A macOS bundle's `Info.plist`.
fn info_plist(kind: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>CFBundleExecutable</key><string>{BUNDLE_NAME}</string>
  <key>CFBundleIdentifier</key><string>io.github.fine-drums.{kind}</string>
  <key>CFBundleName</key><string>{BUNDLE_NAME}</string>
  <key>CFBundlePackageType</key><string>BNDL</string>
  <key>CFBundleVersion</key><string>{version}</string>
  <key>CFBundleShortVersionString</key><string>{version}</string>
</dict>
</plist>
"#,
        version = env!("CARGO_PKG_VERSION")
    )
}

/// Lays out `library` (the built plugin library) as `fine_drums.clap` and `fine_drums.vst3`
/// in `out`, replacing what is there:
///
/// | platform | CLAP | VST3 |
/// |---|---|---|
/// | Linux | `fine_drums.clap` (the library) | `fine_drums.vst3/Contents/x86_64-linux/fine_drums.so` |
/// | Windows | `fine_drums.clap` (the library) | `fine_drums.vst3/Contents/x86_64-win/fine_drums.vst3` |
/// | macOS | `fine_drums.clap/Contents/MacOS/fine_drums` | `fine_drums.vst3/Contents/MacOS/fine_drums` |
///
/// (macOS bundles get an `Info.plist` and `PkgInfo`, and are not signed.)
pub fn write_bundles(library: &Path, out: &Path) -> Result<Bundles> {
    if !library.is_file() {
        return Err(Error::invalid(
            "plugin library",
            format!(
                "{} is not there: build it first (cargo run --release -p fine-drums-plugin --example bundle)",
                library.display()
            ),
        ));
    }
    std::fs::create_dir_all(out).map_err(io(out))?;
    let macos = std::env::consts::OS == "macos";
    let clap = out.join(format!("{BUNDLE_NAME}.clap"));
    let vst3 = out.join(format!("{BUNDLE_NAME}.vst3"));
    for old in [&clap, &vst3] {
        if old.is_dir() {
            std::fs::remove_dir_all(old).map_err(io(old))?;
        } else if old.exists() {
            std::fs::remove_file(old).map_err(io(old))?;
        }
    }
    let contents = |bundle: &Path| bundle.join("Contents");
    if macos {
        copy(library, &contents(&clap).join("MacOS").join(BUNDLE_NAME))?;
        for (bundle, kind) in [(&clap, "clap"), (&vst3, "vst3")] {
            let plist = contents(bundle).join("Info.plist");
            std::fs::write(&plist, info_plist(kind)).map_err(io(&plist))?;
            let pkg = contents(bundle).join("PkgInfo");
            std::fs::write(&pkg, "BNDL????").map_err(io(&pkg))?;
        }
    } else {
        copy(library, &clap)?;
    }
    let name = match std::env::consts::OS {
        "macos" => BUNDLE_NAME.to_string(),
        "windows" => format!("{BUNDLE_NAME}.vst3"),
        _ => format!("{BUNDLE_NAME}{}", std::env::consts::DLL_SUFFIX),
    };
    let vst3_library = contents(&vst3).join(vst3_arch()).join(name);
    copy(library, &vst3_library)?;
    Ok(Bundles { clap, vst3, vst3_library })
}
