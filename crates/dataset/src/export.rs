//! The files a fine-tuning job takes, and the checks OpenAI runs on them before training.

use std::fmt::Write as _;

use fine_drums_codec::{Format, Grid, VoiceMap};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::pairs::{CountTokens, Pair};
use crate::template::Template;

/// One line of OpenAI's legacy fine-tuning format, for `babbage-002` and `davinci-002`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LegacyLine {
    /// The prompt, ending with the separator.
    pub prompt: String,
    /// The completion, starting with whitespace and ending with the stop sequence.
    pub completion: String,
}

/// One message of the chat format.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
}

/// One line of the chat fine-tuning format (`{"messages": [...]}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatLine {
    /// System, user and assistant messages.
    pub messages: Vec<Message>,
}

/// The prompt and completion of one line of a fine-tuning file, as `prepare` writes them: a
/// legacy line's two fields, or a chat line's user and assistant messages (empty when
/// absent). Local models train on these; the parser's error says what is wrong with a line.
pub fn parse_example(line: &str) -> std::result::Result<(String, String), serde_json::Error> {
    let value: serde_json::Value = serde_json::from_str(line)?;
    if value.get("messages").is_some() {
        let chat: ChatLine = serde_json::from_value(value)?;
        let text = |role: &str| {
            chat.messages
                .iter()
                .find(|m| m.role == role)
                .map(|m| m.content.clone())
                .unwrap_or_default()
        };
        Ok((text("user"), text("assistant")))
    } else {
        let l: LegacyLine = serde_json::from_value(value)?;
        Ok((l.prompt, l.completion))
    }
}

/// One example of a fine-tuning file read back ([`read_examples`]): the bars of its prompt
/// and of its completion, as the file's template wrote them.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadExample {
    /// The prompt's bars: the prompt without its separator.
    pub prompt: String,
    /// The completion's bars: the completion without its leading whitespace, and cut at its
    /// stop sequence ([`Template::completion_body`]).
    pub completion: String,
}

impl ReadExample {
    /// The bars of the completion: its lines that are not blank.
    pub fn completion_bars(&self) -> usize {
        self.completion.lines().filter(|l| !l.trim().is_empty()).count()
    }
}

/// The examples of a fine-tuning file ([`read_examples`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadExamples {
    /// The examples, in the file's order.
    pub examples: Vec<ReadExample>,
    /// The commonest completion length in bars (the longer of two as common), or
    /// [`Windows`](crate::Windows)' default of 14 when the file has no example: the length a
    /// model trained on the file continues by default.
    pub completion_bars: usize,
}

/// Reads a fine-tuning file as `prepare` writes it (legacy prompt/completion lines or chat
/// lines, [`parse_example`]), for a model that trains on it; blank lines are skipped. The
/// error names `name` and the line, and keeps the parser's error as its source.
///
/// ```
/// use fine_drums_dataset::Template;
/// use fine_drums_dataset::export::read_examples;
///
/// let jsonl = r#"{"prompt":"KhC..h. Sh..h.\n>>>","completion":"\nKh..Kh. Sh..h.\nKh.. Sh..\n<<<"}"#;
/// let read = read_examples(&Template::default(), "train.jsonl", jsonl)?;
/// assert_eq!(read.examples[0].prompt, "KhC..h. Sh..h.\n");
/// assert_eq!(read.examples[0].completion, "Kh..Kh. Sh..h.\nKh.. Sh..\n");
/// assert_eq!(read.completion_bars, 2);
/// # Ok::<(), fine_drums_dataset::Error>(())
/// ```
pub fn read_examples(template: &Template, name: &str, jsonl: &str) -> Result<ReadExamples> {
    let mut examples = Vec::new();
    let mut lengths = std::collections::BTreeMap::<usize, usize>::new();
    for (i, line) in jsonl.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let (prompt, completion) = parse_example(line).map_err(|source| Error::Example {
            file: name.to_string(),
            line: i + 1,
            source,
        })?;
        let prompt = prompt.strip_suffix(template.separator.as_str()).unwrap_or(&prompt);
        let example = ReadExample {
            prompt: prompt.to_string(),
            completion: template.completion_body(&completion).to_string(),
        };
        *lengths.entry(example.completion_bars()).or_default() += 1;
        examples.push(example);
    }
    let completion_bars = lengths
        .iter()
        .max_by_key(|(bars, n)| (**n, **bars))
        .map_or(crate::Windows::default().completion_bars, |(bars, _)| *bars);
    Ok(ReadExamples { examples, completion_bars })
}

/// The system message of chat examples: what the text means.
pub fn system_message(template: &Template) -> String {
    let format = &template.codec.format;
    let (grid, levels, map) = match format {
        Format::Beat(o) => (o.grid, o.levels.count(), o.voices),
        Format::Exact(_) => (Grid::SIXTEENTH, 127, VoiceMap::Full),
        _ => (Grid::SIXTEENTH, 1, VoiceMap::Paper6),
    };
    format!(
        "You continue drum grooves. Each line is one bar in the fine_drums `{}` format \
         (grid {grid}, {levels} velocity levels, map {map}). Reply with the next bars only.",
        format.name()
    )
}

/// Pairs as legacy prompt/completion JSONL, one object per line.
pub fn legacy_jsonl<'a>(pairs: impl IntoIterator<Item = &'a Pair>) -> String {
    let mut out = String::new();
    for p in pairs {
        let line = LegacyLine { prompt: p.prompt.clone(), completion: p.completion.clone() };
        push_json(&mut out, &line);
    }
    out
}

/// Pairs as chat JSONL: the system message, the prompt bars as the user's message and the
/// completion bars as the assistant's, without separator and stop sequence (chat models
/// end their turn on their own).
pub fn chat_jsonl<'a>(template: &Template, pairs: impl IntoIterator<Item = &'a Pair>) -> String {
    let system = system_message(template);
    let mut out = String::new();
    for p in pairs {
        let user = p.prompt.strip_suffix(template.separator.as_str()).unwrap_or(&p.prompt);
        let assistant = template.completion_body(&p.completion);
        let line = ChatLine {
            messages: vec![
                Message { role: "system".into(), content: system.clone() },
                Message { role: "user".into(), content: user.to_string() },
                Message { role: "assistant".into(), content: assistant.to_string() },
            ],
        };
        push_json(&mut out, &line);
    }
    out
}

/// Pairs as plain text: each example's prompt and completion, back to back, one example
/// after another separated by a blank line. For trainers that take raw text.
pub fn plain_text<'a>(pairs: impl IntoIterator<Item = &'a Pair>) -> String {
    let mut out = String::new();
    for p in pairs {
        let _ = write!(out, "{}{}\n\n", p.prompt, p.completion);
    }
    out
}

fn push_json<T: Serialize>(out: &mut String, value: &T) {
    // Serialising plain strings into a String cannot fail.
    if let Ok(s) = serde_json::to_string(value) {
        out.push_str(&s);
        out.push('\n');
    }
}

/// What [`check_legacy`] found in a valid file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Checked {
    /// Examples in the file.
    pub examples: usize,
    /// Tokens of all examples.
    pub tokens: usize,
    /// The most tokens in one example.
    pub max_tokens: usize,
}

/// OpenAI's checks on a legacy training file, done before upload: at least 10 examples,
/// every line a JSON object with exactly `prompt` and `completion`, every prompt ending
/// with the separator, every completion starting with whitespace and ending with the stop
/// sequence, and every example within `max_tokens`. `what` names the file in errors.
pub fn check_legacy(
    what: &str,
    text: &str,
    template: &Template,
    max_tokens: usize,
    tokens: &dyn CountTokens,
) -> Result<Checked> {
    let err = |line: usize, message: String| Error::Json { what: what.to_string(), line, message };
    let mut checked = Checked { examples: 0, tokens: 0, max_tokens: 0 };
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            return Err(err(n, "empty line".into()));
        }
        let l: LegacyLine = serde_json::from_str(line).map_err(|e| err(n, e.to_string()))?;
        if !l.prompt.ends_with(template.separator.as_str()) {
            return Err(err(
                n,
                format!("the prompt does not end with the separator {:?}", template.separator),
            ));
        }
        if !l.completion.starts_with([' ', '\n']) {
            return Err(err(n, "the completion does not start with a space or newline".into()));
        }
        if !l.completion.ends_with(template.stop.as_str()) {
            return Err(err(
                n,
                format!("the completion does not end with the stop sequence {:?}", template.stop),
            ));
        }
        let t = tokens.count_tokens(&l.prompt) + tokens.count_tokens(&l.completion);
        if t > max_tokens {
            return Err(err(n, format!("{t} tokens, over the budget of {max_tokens}")));
        }
        checked.examples += 1;
        checked.tokens += t;
        checked.max_tokens = checked.max_tokens.max(t);
    }
    if checked.examples < 10 {
        return Err(Error::invalid(
            "training file",
            format!("{what}: {} examples; OpenAI needs at least 10", checked.examples),
        ));
    }
    Ok(checked)
}

/// The price of training on one million tokens, per model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Price {
    /// The base model.
    pub model: String,
    /// US dollars per million training tokens (per epoch).
    pub training_per_million: f64,
}

/// Training prices, and where they came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Prices {
    /// Where the figures came from and when.
    pub source: String,
    /// One row per model.
    pub models: Vec<Price>,
}

impl Default for Prices {
    /// OpenAI's fine-tuning prices announced with `babbage-002` and `davinci-002`
    /// ("GPT-3.5 Turbo fine-tuning and API updates", 2023-08-22, and the pricing page
    /// until these models left it): training $0.0004 and $0.006 per 1K tokens.
    fn default() -> Prices {
        Prices {
            source: "OpenAI pricing, 2023-08-22 (babbage-002 $0.40, davinci-002 $6.00 per 1M training tokens); prices change, override with --prices".into(),
            models: vec![
                Price { model: "babbage-002".into(), training_per_million: 0.40 },
                Price { model: "davinci-002".into(), training_per_million: 6.00 },
            ],
        }
    }
}

impl Prices {
    /// The cost in US dollars of one epoch over `tokens` tokens, per model.
    pub fn per_epoch(&self, tokens: usize) -> Vec<(String, f64)> {
        self.models
            .iter()
            .map(|p| (p.model.clone(), tokens as f64 / 1e6 * p.training_per_million))
            .collect()
    }

    /// Reads a price table from JSON (the shape [`Prices`] serialises to).
    pub fn from_json(text: &str) -> Result<Prices> {
        serde_json::from_str(text).map_err(|e| Error::Json {
            what: "prices".into(),
            line: e.line(),
            message: e.to_string(),
        })
    }
}
