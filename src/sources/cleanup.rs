//! What a post's source holds that an email must not show: attribute lists (`{.class}`,
//! `{style="…"}`), tracking pixels, and reference definitions split over two lines
//! (valid CommonMark that a line-by-line reader would miss).

/// Lines that are only an attribute list are dropped, and one at a line's end is cut:
/// kramdown's `{: .class}`, goldmark's `{#id .class key="value"}`.
pub(crate) fn strip_attribute_lists(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let (content, newline) = match line.strip_suffix('\n') {
            Some(c) => (c, "\n"),
            None => (line, ""),
        };
        let trimmed = content.trim_end();
        if is_attribute_list(trimmed.trim_start()) {
            out.push_str(newline);
            continue;
        }
        let kept = match trimmed.rfind('{') {
            Some(at) if trimmed.ends_with('}') && is_attribute_list(&trimmed[at..]) => {
                trimmed[..at].trim_end()
            }
            _ => content,
        };
        out.push_str(kept);
        out.push_str(newline);
    }
    out
}

/// `{…}` holding only `.class`, `#id` and `key=value` words (after an optional `:`).
fn is_attribute_list(text: &str) -> bool {
    let Some(inner) = text.strip_prefix('{').and_then(|t| t.strip_suffix('}')) else {
        return false;
    };
    let inner = inner.strip_prefix(':').unwrap_or(inner).trim();
    if inner.is_empty() || inner.contains(['{', '}']) {
        return false;
    }
    attribute_words(inner).iter().all(|word| {
        let name_ok = |n: &str| {
            !n.is_empty()
                && n.chars()
                    .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
        };
        match word.split_once('=') {
            Some((key, _)) => name_ok(key),
            None => word.strip_prefix(['.', '#']).is_some_and(name_ok),
        }
    })
}

/// Words separated by spaces, a quoted value kept whole (`style="a b"`).
fn attribute_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    for c in text.chars() {
        match (quote, c) {
            (None, '"' | '\'') => {
                quote = Some(c);
                word.push(c);
            }
            (Some(q), c) if c == q => {
                quote = None;
                word.push(c);
            }
            (None, c) if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            _ => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// `<img>` tags that are tracking pixels (a width or height of 0 to 2 pixels) removed.
pub(crate) fn drop_tracking_images(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = find_ignore_case(rest, "<img") {
        let Some(end) = rest[start..].find('>') else {
            break;
        };
        let tag = &rest[start..start + end + 1];
        out.push_str(&rest[..start]);
        if !is_tracking_pixel(tag) {
            out.push_str(tag);
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    out
}

fn find_ignore_case(haystack: &str, needle: &str) -> Option<usize> {
    haystack
        .as_bytes()
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

fn is_tracking_pixel(tag: &str) -> bool {
    ["width", "height"].iter().any(|name| {
        attribute(tag, name)
            .and_then(|v| v.trim_end_matches("px").trim().parse::<u32>().ok())
            .is_some_and(|px| px <= 2)
    })
}

/// The value of `name="…"` (or `'…'`, or bare) in an HTML tag.
fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(at) = lower[from..].find(name) {
        let at = from + at;
        from = at + name.len();
        let before_ok = lower[..at].ends_with(|c: char| c.is_whitespace());
        let after = lower[from..].trim_start();
        if !before_ok || !after.starts_with('=') {
            continue;
        }
        let value_start = tag.len() - after.len() + 1;
        let value = tag[value_start..].trim_start();
        return Some(match value.chars().next() {
            Some(q @ ('"' | '\'')) => value[1..].split(q).next().unwrap_or(""),
            _ => value
                .split(|c: char| c.is_whitespace() || c == '>' || c == '/')
                .next()
                .unwrap_or(""),
        });
    }
    None
}

/// A reference definition whose destination is on the next line (`[ref]:` then the URL
/// indented below) joined onto one line, so a line-by-line reader finds it.
pub(crate) fn join_split_definitions(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::with_capacity(lines.len());
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let t = line.trim();
        let label_only = t.starts_with('[') && t.ends_with("]:") && !t.starts_with("[^");
        if label_only && i + 1 < lines.len() && !lines[i + 1].trim().is_empty() {
            out.push(format!("{} {}", line.trim_end(), lines[i + 1].trim()));
            i += 2;
            continue;
        }
        out.push(line.to_string());
        i += 1;
    }
    let mut joined = out.join("\n");
    if text.ends_with('\n') {
        joined.push('\n');
    }
    joined
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_lists_go_and_braces_that_say_something_stay() {
        assert_eq!(
            strip_attribute_lists("A styled paragraph.\n{style=\"color: red\"}\n\nNext.\n"),
            "A styled paragraph.\n\n\nNext.\n"
        );
        assert_eq!(
            strip_attribute_lists("## Title {#intro .big}\n"),
            "## Title\n"
        );
        assert_eq!(strip_attribute_lists("{: .note}\nText"), "\nText");
        assert_eq!(strip_attribute_lists("a set {1, 2}\n"), "a set {1, 2}\n");
        assert_eq!(strip_attribute_lists("x = {a: b}\n"), "x = {a: b}\n");
    }

    #[test]
    fn tracking_pixels_go_and_real_images_stay() {
        assert_eq!(
            drop_tracking_images(
                "A <img src=\"p.gif\" width=\"1\" height=\"1\"> b <IMG SRC=x.png WIDTH=640>"
            ),
            "A  b <IMG SRC=x.png WIDTH=640>"
        );
        assert_eq!(
            drop_tracking_images("<img height='2px' src=t.gif/>ok"),
            "ok"
        );
    }

    #[test]
    fn a_destination_on_the_next_line_joins_its_label() {
        assert_eq!(
            join_split_definitions("See [K].\n\n[K]:\n  https://example.com/k\n"),
            "See [K].\n\n[K]: https://example.com/k\n"
        );
    }
}

#[cfg(test)]
mod excerpt_tests {
    use crate::sources::excerpt;

    #[test]
    fn excerpts_of_real_content_show_no_raw_markup() {
        // A paragraph announcing a list keeps the list's first items, not a later line.
        let list = excerpt(
            None,
            "Three things:\n\n- one\n- two\n- three\n\nUnrelated.\n",
        );
        assert_eq!(list, "Three things:\n\n- one\n- two\n- three");
        // A destination on the next line still resolves the link.
        let refs = excerpt(
            None,
            "See [KubeCon NA].\n\n[KubeCon NA]:\n  https://example.com/k\n",
        );
        assert_eq!(
            refs,
            "See [KubeCon NA].\n\n[KubeCon NA]: https://example.com/k"
        );
        // Attribute lists, scripts, styles and tracking pixels contribute nothing.
        let noise = excerpt(
            None,
            "<script>var t = 1;</script>\n<style>p{}</style>\n\nText <img src=\"p.gif\" width=\"1\" height=\"1\"> here.\n{.lead}\n",
        );
        assert_eq!(noise, "Text  here.");
        // A body opening with an HTML block: the first real paragraph, as Markdown.
        let html = excerpt(
            None,
            "<figure><img src=\"a.png\"></figure>\n\nFirst **real** one.\n\nMore.\n",
        );
        assert_eq!(html, "First **real** one.");
    }
}
