//! A drummer's feel for grooves on the grid: the velocity and microtiming that drummers give
//! the hits a model writes on a 16th grid with a few loudness levels.
//!
//! ```
//! use fine_drums_codec::pattern::rock_groove;
//! use fine_drums_feel::Feel;
//!
//! // Four bars on the grid, after a two-bar prompt as a drummer played it.
//! let prompt = rock_groove(2, 100.0)?;
//! let mut new = rock_groove(4, 100.0)?;
//! let on_the_grid = new.clone();
//! Feel::gmd().humanise(&mut new, &prompt, 7);
//! // The same hits on the same steps, now played: off the grid, and louder or softer.
//! assert_eq!(new.bars.len(), on_the_grid.bars.len());
//! assert!(new.bars.iter().flat_map(|b| &b.hits).any(|h| h.offset != 0));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A [`Feel`] learns, from human performances ([`Feel::learn`]), how loud and how far off the
//! grid drummers play each voice at each step of the bar and each level. The built-in one,
//! [`Feel::gmd`], was learned from the Groove MIDI Dataset's train split (see
//! `table/README.md` for how, and for the attribution). [`Feel::humanise`] draws from it,
//! shifted by the prompt's own feel: a snare the prompt plays late stays late, hats it swings
//! stay swung, a drummer who plays soft stays soft. The same seed gives the same bars.
//!
//! The crate needs only the codec: the continuation pipeline gives new bars this feel, and
//! anything else with a groove on the grid (a plugin, an editor) can too.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

// Modules from the bottom up: each uses only those above it in this list.
mod error;
mod random;
mod feel;

pub use error::{Error, Result};
pub use feel::Feel;
