//! A deterministic split for folders of MIDI that come without an index.
//!
//! # The leakage rule
//!
//! Files that share a *group* always land in the same split, so that takes of one song or
//! one session never sit on both sides of the train/test line (a model that saw bar 9 of
//! a take would "predict" bar 10 of it from memory). The group of a file is, by default,
//! the folder that holds it; [`GroupBy::Folder`] with a depth keeps whole sub-trees
//! together instead, and [`GroupBy::File`] groups nothing (use it only when files are
//! unrelated).
//!
//! The split of a group depends only on its name: the 64-bit FNV-1a hash of the group's
//! path (with `/` separators), scaled to `[0, 1)` and compared with the cumulative ratios.
//! Adding or removing files never moves another group, and the same tree gives the same
//! split on every machine.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::index::Split;

/// What keeps files together in one split.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    /// The first `depth` folders of the file's path, or its whole folder when the file is
    /// less deep (`depth: None` means the whole folder).
    Folder {
        /// How many leading folders name the group.
        depth: Option<usize>,
    },
    /// Each file on its own.
    File,
}

/// A split by hashed group, with ratios the user sets.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HashSplit {
    /// Relative weights of train, validation and test. Default: 80 / 10 / 10.
    pub ratios: [f64; 3],
    /// The grouping key. Default: the file's folder.
    pub group_by: GroupBy,
}

impl Default for HashSplit {
    fn default() -> HashSplit {
        HashSplit { ratios: [0.8, 0.1, 0.1], group_by: GroupBy::Folder { depth: None } }
    }
}

impl HashSplit {
    /// A split with the given weights, grouping by folder.
    pub fn new(train: f64, validation: f64, test: f64) -> Result<HashSplit> {
        let s = HashSplit { ratios: [train, validation, test], ..HashSplit::default() };
        s.check()?;
        Ok(s)
    }

    /// Checks that the weights are finite, non-negative and not all zero.
    pub fn check(&self) -> Result<()> {
        let total: f64 = self.ratios.iter().sum();
        if self.ratios.iter().any(|r| !r.is_finite() || *r < 0.0) || total <= 0.0 {
            return Err(Error::invalid(
                "split ratios",
                format!("{:?} (need non-negative numbers, not all zero)", self.ratios),
            ));
        }
        Ok(())
    }

    /// The group of a path (relative, `/` or `\` separated).
    pub fn group<'a>(&self, path: &'a str) -> std::borrow::Cow<'a, str> {
        let path = if path.contains('\\') {
            std::borrow::Cow::Owned(path.replace('\\', "/"))
        } else {
            std::borrow::Cow::Borrowed(path)
        };
        let folder_end = path.rfind('/').unwrap_or(0);
        let end = match self.group_by {
            GroupBy::File => path.len(),
            GroupBy::Folder { depth: None } => folder_end,
            GroupBy::Folder { depth: Some(d) } => path
                .match_indices('/')
                .nth(d.saturating_sub(1))
                .map_or(folder_end, |(i, _)| i.min(folder_end)),
        };
        match path {
            std::borrow::Cow::Borrowed(p) => std::borrow::Cow::Borrowed(&p[..end]),
            std::borrow::Cow::Owned(mut p) => {
                p.truncate(end);
                std::borrow::Cow::Owned(p)
            }
        }
    }

    /// The split of a file.
    ///
    /// ```
    /// use fine_drums_dataset::HashSplit;
    ///
    /// let split = HashSplit::default();
    /// // Two takes in one folder always share a split.
    /// assert_eq!(split.split_of("song/take1.mid"), split.split_of("song/take2.mid"));
    /// ```
    pub fn split_of(&self, path: &str) -> Split {
        let h = fnv1a(self.group(path).as_bytes());
        // The top 53 bits as a fraction in [0, 1).
        let x = (h >> 11) as f64 / (1u64 << 53) as f64;
        let total: f64 = self.ratios.iter().sum();
        let mut edge = 0.0;
        for (split, r) in Split::ALL.into_iter().zip(self.ratios) {
            edge += r / total;
            if x < edge && r > 0.0 {
                return split;
            }
        }
        // Rounding can leave x just above the last edge: the last split with weight.
        Split::ALL
            .into_iter()
            .zip(self.ratios)
            .rev()
            .find(|(_, r)| *r > 0.0)
            .map_or(Split::Train, |(s, _)| s)
    }
}

/// 64-bit FNV-1a: tiny, stable across platforms and releases.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}
