//! Cutting grooves into prompt -> completion windows. No I/O: grooves in, pairs out.

use fine_drums_codec::Groove;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::template::Template;

/// Counts tokens the way the model that will be fine-tuned does.
pub trait CountTokens {
    /// The number of tokens in `text`.
    fn count_tokens(&self, text: &str) -> usize;
}

impl CountTokens for tiktoken_rs::CoreBPE {
    fn count_tokens(&self, text: &str) -> usize {
        self.encode_ordinary(text).len()
    }
}

/// The tokenizer of `babbage-002` and `davinci-002`: `cl100k_base`.
pub fn cl100k() -> Result<tiktoken_rs::CoreBPE> {
    tiktoken_rs::cl100k_base().map_err(|e| Error::Tokenizer(e.to_string()))
}

/// How windows are cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Windows {
    /// Bars in the prompt. Default: 2 (as Zhang & Callison-Burch 2023).
    pub prompt_bars: usize,
    /// Bars in the completion. Default: 14.
    pub completion_bars: usize,
    /// Bars between the starts of two windows of one file. Default: 16 (no overlap).
    pub stride: usize,
    /// The fewest completion bars a window may keep: the last window of a file, or one
    /// shortened to fit the token budget. Default: 1.
    pub min_completion_bars: usize,
    /// Most tokens of prompt plus completion in one example. Default: 4,096, the
    /// fine-tuning context of `babbage-002` and `davinci-002`.
    pub max_tokens: usize,
}

impl Default for Windows {
    fn default() -> Windows {
        Windows {
            prompt_bars: 2,
            completion_bars: 14,
            stride: 16,
            min_completion_bars: 1,
            max_tokens: 4096,
        }
    }
}

/// One prompt -> completion example.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Pair {
    /// The first bar of the window in its groove.
    pub start_bar: usize,
    /// Bars in the prompt.
    pub prompt_bars: usize,
    /// Bars in the completion.
    pub completion_bars: usize,
    /// The prompt text, ending with the template's separator.
    pub prompt: String,
    /// The completion text, starting with a newline and ending with the stop sequence.
    pub completion: String,
    /// Tokens of prompt plus completion.
    pub tokens: usize,
}

/// What cutting one groove gave.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Cut {
    /// The pairs, in bar order.
    pub pairs: Vec<Pair>,
    /// Windows dropped because even their shortest form is over the token budget.
    pub over_budget: usize,
}

impl Windows {
    /// Checks that the sizes make sense.
    pub fn check(&self) -> Result<()> {
        if self.prompt_bars == 0 || self.completion_bars == 0 || self.stride == 0 {
            return Err(Error::invalid(
                "windows",
                "prompt bars, completion bars and stride must be 1 or more",
            ));
        }
        if self.min_completion_bars == 0 || self.min_completion_bars > self.completion_bars {
            return Err(Error::invalid(
                "windows",
                format!(
                    "minimum completion bars {} must be from 1 to the completion bars ({})",
                    self.min_completion_bars, self.completion_bars
                ),
            ));
        }
        Ok(())
    }

    /// The fewest bars a groove needs for one window.
    pub fn min_bars(&self) -> usize {
        self.prompt_bars + self.min_completion_bars
    }

    /// The first bars of the windows of a groove of `bars` bars that hold at least `len`
    /// bars: every [`stride`](Windows::stride) bars from 0, never crossing the end.
    ///
    /// ```
    /// use fine_drums_dataset::Windows;
    ///
    /// let w = Windows::default(); // a stride of 16
    /// assert_eq!(w.starts(40, w.min_bars()).collect::<Vec<_>>(), [0, 16, 32]);
    /// assert_eq!(w.starts(40, 16).collect::<Vec<_>>(), [0, 16]); // whole windows only
    /// ```
    pub fn starts(&self, bars: usize, len: usize) -> impl Iterator<Item = usize> + use<> {
        (0..bars).step_by(self.stride.max(1)).take_while(move |s| s + len <= bars)
    }

    /// Cuts `groove` (as [`Template::read`] gives it) into pairs.
    ///
    /// Windows start every [`stride`](Windows::stride) bars and never cross the end of the
    /// groove; the last one may be shorter. A window over the token budget loses whole
    /// completion bars from its end until it fits, never part of a bar.
    pub fn cut(
        &self,
        groove: &Groove,
        template: &Template,
        tokens: &dyn CountTokens,
    ) -> Result<Cut> {
        self.check()?;
        let n = groove.bars.len();
        let mut cut = Cut::default();
        for start in self.starts(n, self.min_bars()) {
            let p_end = start + self.prompt_bars;
            let prompt = template.prompt_text(&groove.slice(start..p_end))?;
            let prompt_tokens = tokens.count_tokens(&prompt);
            let mut c = self.completion_bars.min(n - p_end);
            loop {
                if c < self.min_completion_bars {
                    cut.over_budget += 1;
                    break;
                }
                let completion = template.completion_text(&groove.slice(p_end..p_end + c))?;
                let total = prompt_tokens + tokens.count_tokens(&completion);
                if total <= self.max_tokens {
                    cut.pairs.push(Pair {
                        start_bar: start,
                        prompt_bars: self.prompt_bars,
                        completion_bars: c,
                        prompt,
                        completion,
                        tokens: total,
                    });
                    break;
                }
                c -= 1;
            }
        }
        Ok(cut)
    }
}
