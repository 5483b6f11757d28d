//! Tables as the reports print them: Markdown in `results.md`, HTML in `report.html`; and
//! the page that holds the HTML ones.

use std::fmt::Write as _;

/// A table with the paragraph before it and the note after it (either may be empty). The
/// first column is text; the others are figures, right-aligned.
#[derive(Clone, Debug, Default)]
pub(crate) struct Table {
    pub before: String,
    pub head: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
    pub after: String,
}

impl Table {
    pub fn new(before: impl Into<String>, head: &[&'static str]) -> Table {
        Table { before: before.into(), head: head.to_vec(), ..Table::default() }
    }

    pub fn markdown(&self, s: &mut String) {
        if !self.before.is_empty() {
            let _ = write!(s, "\n{}\n\n", self.before);
        }
        let _ = writeln!(s, "| {} |", self.head.join(" | "));
        let rule: Vec<&str> =
            (0..self.head.len()).map(|i| if i == 0 { "---" } else { "---:" }).collect();
        let _ = writeln!(s, "|{}|", rule.join("|"));
        for row in &self.rows {
            let _ = writeln!(s, "| {} |", row.join(" | "));
        }
        if !self.after.is_empty() {
            let _ = write!(s, "\n{}\n", self.after);
        }
    }

    pub fn html(&self, s: &mut String) {
        if !self.before.is_empty() {
            let _ = writeln!(s, "<p>{}</p>", escape(&self.before));
        }
        s.push_str("<table>\n<thead><tr>");
        for h in &self.head {
            let _ = write!(s, "<th>{}</th>", escape(h));
        }
        s.push_str("</tr></thead>\n<tbody>\n");
        for row in &self.rows {
            s.push_str("<tr>");
            for (i, cell) in row.iter().enumerate() {
                let (open, close) = if i == 0 { ("th scope=\"row\"", "th") } else { ("td", "td") };
                let _ = write!(s, "<{open}>{}</{close}>", escape(cell));
            }
            s.push_str("</tr>\n");
        }
        s.push_str("</tbody>\n</table>\n");
        if !self.after.is_empty() {
            let _ =
                writeln!(s, "<p class=\"note\">{}</p>", escape(&self.after).replace('\n', "<br>"));
        }
    }
}

/// Text made safe inside HTML or XML elements and attribute values.
pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A relative path made safe as a URL in an attribute: each segment percent-encoded except
/// for the characters that need no encoding.
pub(crate) fn href(path: &str) -> String {
    let mut s = String::with_capacity(path.len());
    for b in path.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' | b'@' => {
                s.push(b as char)
            }
            _ => {
                let _ = write!(s, "%{b:02X}");
            }
        }
    }
    s
}

const STYLE: &str =
    "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:72em;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1em}
th,td{border:1px solid #b8c4d6;padding:0.25em 0.6em}
thead th{background:#dfe8f5}
td{text-align:right;font-variant-numeric:tabular-nums}
tbody th{text-align:left;font-weight:normal}
p.note{font-size:0.9em;color:#555}
#check.bad{background:#fde2e1;border:1px solid #d62728;padding:0.5em}
img{max-width:100%;height:auto;display:block;margin:0.5em 0}
section{border-top:1px solid #ddd;margin-top:1.5em}
audio{height:2em;vertical-align:middle}";

/// A whole page: `title` as its heading, then `body`. A script checks on load that every
/// picture the page shows came through, and says which did not (as a warning on the page,
/// and in `data-check` on the body, for tests).
pub(crate) fn page(title: &str, body: &str) -> String {
    let title = escape(title);
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>\n{STYLE}\n</style>\n</head>\n<body>\n<h1>{title}</h1>\n\
         <p id=\"check\"></p>\n{body}\n<script>\n{CHECK}\n</script>\n</body>\n</html>\n"
    )
}

/// The page's own check: counts tables and pictures, and names any picture that did not
/// load (pictures still waiting to load lazily are not counted as broken).
const CHECK: &str = "window.addEventListener('load', () => {
  const imgs = [...document.images];
  const broken = imgs.filter(i => i.complete && i.naturalWidth === 0);
  const loaded = imgs.filter(i => i.complete && i.naturalWidth > 0);
  const tables = document.querySelectorAll('table').length;
  document.body.dataset.check =
    `tables=${tables} pictures=${imgs.length} loaded=${loaded.length} broken=${broken.length}`;
  if (broken.length > 0) {
    const p = document.getElementById('check');
    p.className = 'bad';
    p.textContent = `${broken.length} of ${imgs.length} pictures did not load (first: ` +
      `${broken[0].getAttribute('src')}); keep this page in its folder, beside them.`;
  }
});";
