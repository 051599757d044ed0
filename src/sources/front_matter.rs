//! Front matter fences: `+++` (TOML) or `---` (YAML) around the first lines of a file.

use std::path::Path;

use crate::error::Diagnostic;

/// The parts of a post file.
#[derive(Debug, PartialEq)]
pub struct Split<'a> {
    pub front_matter: &'a str,
    /// Byte offset of `front_matter` inside the file text.
    pub offset: usize,
    pub body: &'a str,
    /// `---` (YAML) rather than `+++` (TOML).
    pub yaml: bool,
}

/// Split `+++`-delimited front matter from the body (our own format only).
pub fn split_front_matter<'a>(path: &Path, source: &'a str) -> Result<Split<'a>, Diagnostic> {
    let split = split_any(path, source)?;
    if split.yaml {
        return Err(Diagnostic::at(
            path,
            1,
            "YAML front matter (---) is not digestif's own format, which expects TOML between two +++ lines",
        ));
    }
    Ok(split)
}

/// Split `+++` (TOML) or `---` (YAML) front matter from the body.
pub fn split_any<'a>(path: &Path, source: &'a str) -> Result<Split<'a>, Diagnostic> {
    let bom = if source.starts_with('\u{feff}') {
        '\u{feff}'.len_utf8()
    } else {
        0
    };
    let text = &source[bom..];
    // Zola and Hugo accept blank lines before the opening fence.
    let blank = text.len() - text.trim_start_matches(['\n', '\r', ' ', '\t']).len();
    let blank = text[..blank].rfind('\n').map_or(0, |i| i + 1);
    let (bom, text) = (bom + blank, &text[blank..]);
    let mut lines = LineOffsets::new(text);
    let Some((first, after_first)) = lines.next() else {
        return Err(Diagnostic::at(
            path,
            1,
            "empty file: expected TOML front matter between +++ lines",
        ));
    };
    let fence @ ("+++" | "---") = first.trim_end() else {
        return Err(Diagnostic::at(
            path,
            1,
            "expected front matter: the file must start with a line +++ (TOML) or --- (YAML)",
        ));
    };
    for (line, end) in lines.by_ref() {
        if line.trim_end() == fence || (fence == "---" && line.trim_end() == "...") {
            let start_of_line = end - line.len() - newline_len(text, end);
            return Ok(Split {
                front_matter: &text[after_first..start_of_line],
                offset: bom + after_first,
                body: &text[end..],
                yaml: fence == "---",
            });
        }
    }
    Err(Diagnostic::at(
        path,
        1,
        format!("front matter opened with {fence} on line 1 is never closed (expected a closing {fence} line)"),
    ))
}

fn newline_len(text: &str, end: usize) -> usize {
    let before = &text.as_bytes()[..end];
    if before.ends_with(b"\r\n") {
        2
    } else if before.ends_with(b"\n") {
        1
    } else {
        0
    }
}

/// Lines without their terminator, with the byte offset just past the terminator.
struct LineOffsets<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> LineOffsets<'a> {
    fn new(text: &'a str) -> Self {
        LineOffsets { text, pos: 0 }
    }
}

impl<'a> Iterator for LineOffsets<'a> {
    type Item = (&'a str, usize);
    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.text.len() {
            return None;
        }
        let rest = &self.text[self.pos..];
        let (line, advance) = match rest.find('\n') {
            Some(i) => (&rest[..i], i + 1),
            None => (rest, rest.len()),
        };
        self.pos += advance;
        Some((line.strip_suffix('\r').unwrap_or(line), self.pos))
    }
}
