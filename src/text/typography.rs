//! Typography of a language, applied to plain text (post titles, excerpts, sources, our
//! own wording) before it is laid out, never to URLs or markup.
//!
//! French (Imprimerie nationale usage, as French readers expect it in print): a narrow
//! no-break space (U+202F) before `;` `!` `?` and inside `« »`, a no-break space (U+00A0)
//! before `:`, so that no punctuation starts a line; in every language a typographic
//! apostrophe between letters, and an arrow kept on the line of the word before it.

/// Narrow no-break space.
pub const NNBSP: char = '\u{202F}';
/// No-break space.
pub const NBSP: char = '\u{A0}';

/// `text` with the typography of `language` ("fr", "en", ...).
pub fn typeset(text: &str, language: &str) -> String {
    let french = language == "fr" || language.starts_with("fr-") || language.starts_with("fr_");
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() + 8);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if is_space(c) {
            // A run of spaces: what follows it decides what it becomes.
            let start = i;
            while i < chars.len() && is_space(chars[i]) {
                i += 1;
            }
            let next = chars.get(i).copied();
            let before_text = start > 0;
            match next {
                Some(';' | '!' | '?' | '»') if french && before_text => out.push(NNBSP),
                Some(':') if french && before_text => out.push(NBSP),
                Some('→') if before_text => out.push(NBSP),
                _ if french && start > 0 && chars[start - 1] == '«' => out.push(NNBSP),
                _ => out.extend(&chars[start..i]),
            }
            continue;
        }
        match c {
            '\'' if i > 0
                && chars[i - 1].is_alphabetic()
                && chars.get(i + 1).is_some_and(|n| n.is_alphabetic()) =>
            {
                out.push('’');
            }
            '«' if french && chars.get(i + 1).is_some_and(|n| !is_space(*n)) => {
                out.push('«');
                out.push(NNBSP);
            }
            '»' if french && i > 0 && !is_space(chars[i - 1]) => {
                out.push(NNBSP);
                out.push('»');
            }
            _ => out.push(c),
        }
        i += 1;
    }
    out
}

/// The spaces a run of which may be replaced: ASCII space and the no-break ones, never a
/// line break.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | NBSP | NNBSP | '\u{2009}')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fr(s: &str) -> String {
        typeset(s, "fr")
    }

    #[test]
    fn french_high_punctuation_gets_a_narrow_no_break_space() {
        assert_eq!(fr("Des RSE ? Oui !"), "Des RSE\u{202F}? Oui\u{202F}!");
        assert_eq!(fr("un ; deux"), "un\u{202F}; deux");
        // Already right, or already narrow: unchanged; no space: none added.
        assert_eq!(fr("RSE\u{202F}?"), "RSE\u{202F}?");
        assert_eq!(fr("RSE?"), "RSE?");
    }

    #[test]
    fn french_colon_gets_a_no_break_space() {
        assert_eq!(
            fr("Pour vous désabonner : lien"),
            "Pour vous désabonner\u{A0}: lien"
        );
        // URLs have no space before their colon.
        assert_eq!(fr("https://exemple.fr/a?b=1"), "https://exemple.fr/a?b=1");
    }

    #[test]
    fn french_quotes_hold_their_words() {
        assert_eq!(fr("« e-commerce »"), "«\u{202F}e-commerce\u{202F}»");
        assert_eq!(fr("«e-commerce»"), "«\u{202F}e-commerce\u{202F}»");
    }

    #[test]
    fn apostrophes_between_letters_are_typographic_in_every_language() {
        assert_eq!(fr("L'Islande et l’Islande"), "L’Islande et l’Islande");
        assert_eq!(typeset("Editor's pick", "en"), "Editor’s pick");
        // Not a quote mark: left alone.
        assert_eq!(typeset("'quoted'", "en"), "'quoted'");
    }

    #[test]
    fn an_arrow_stays_with_the_word_before_it() {
        assert_eq!(typeset("Read more →", "en"), "Read more\u{A0}→");
        assert_eq!(fr("Lire la suite →"), "Lire la suite\u{A0}→");
    }

    #[test]
    fn english_punctuation_is_left_as_written() {
        assert_eq!(typeset("Why ? Because : yes", "en"), "Why ? Because : yes");
        assert_eq!(typeset("« x »", "en"), "« x »");
    }

    #[test]
    fn line_breaks_are_never_replaced() {
        assert_eq!(fr("fin\n: début"), "fin\n: début");
    }
}
