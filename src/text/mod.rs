//! Leaf: small text helpers used by many rooms (whitespace, hex, `{placeholder}` filling)
//! and a language's [`typography`]. Nothing here knows about posts, mail or the list.

pub mod typography;

/// Collapse runs of whitespace (including newlines and control characters) into one space.
pub fn normalize_whitespace(s: &str) -> String {
    s.split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Text for one header line (or one line of a report): CR, LF and other control
/// characters replaced by spaces.
pub fn header_safe(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(value);
    }
    value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .into()
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// A size as a person reads it: `512 bytes`, `17.4 kB`, `3.2 MB` (decimal units).
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [(f64, &str); 3] = [(1e9, "GB"), (1e6, "MB"), (1e3, "kB")];
    for (size, unit) in UNITS {
        if bytes as f64 >= size {
            return format!("{:.1} {unit}", bytes as f64 / size);
        }
    }
    format!("{bytes} bytes")
}

/// Replace `{key}` placeholders with their values; unknown ones stay as written.
pub fn fill_placeholders(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = template.to_string();
    for (key, value) in values {
        out = out.replace(&format!("{{{key}}}"), value);
    }
    out
}

/// The `{names}` a template uses, in order, each once per use.
pub fn placeholders(template: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else { break };
        found.push(&after[..close]);
        rest = &after[close + 1..];
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_and_control_characters_become_one_space() {
        assert_eq!(normalize_whitespace(" a\r\n b\u{7}c "), "a b c");
    }

    #[test]
    fn sizes_read_as_people_say_them() {
        assert_eq!(human_bytes(512), "512 bytes");
        assert_eq!(human_bytes(17_436_853), "17.4 MB");
        assert_eq!(human_bytes(30_100), "30.1 kB");
        assert_eq!(human_bytes(2_500_000_000), "2.5 GB");
    }

    #[test]
    fn hex_is_lowercase_two_digits_a_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
    }

    #[test]
    fn placeholders_are_filled_and_unknown_ones_kept() {
        let filled = fill_placeholders(
            "{name} — {week} {nope}",
            &[("name", "Veille"), ("week", "W1")],
        );
        assert_eq!(filled, "Veille — W1 {nope}");
        assert_eq!(placeholders("{a} x {b}{c"), ["a", "b"]);
    }
}
