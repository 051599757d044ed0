//! What WordPress adds to every feed item and a digest does not want.

/// WordPress's feed furniture: "The post … appeared first on …", its French form, "Read
/// More…", "Continue reading", and the trailing "[…]".
pub fn remove_boilerplate(html: &str) -> String {
    let markdown = crate::sources::excerpt(Some(html), "");
    let kept: Vec<&str> = markdown
        .split("\n\n")
        .filter(|paragraph| {
            let p = paragraph.trim();
            let lower = p.to_lowercase();
            !(lower.starts_with("the post ") && lower.contains("appeared first on"))
                && !((lower.starts_with("l'article ") || lower.starts_with("l’article "))
                    && lower.contains("est apparu en premier sur"))
                && !is_read_more(&lower)
        })
        .collect();
    let text = kept.join("\n\n");
    let trimmed = text.trim_end();
    let trimmed = [
        "[…]",
        "[...]",
        "[&hellip;]",
        "[&#8230;]",
        "\\[…\\]",
        "\\[...\\]",
        "…",
    ]
    .iter()
    .find_map(|tail| trimmed.strip_suffix(tail))
    .unwrap_or(trimmed);
    trimmed.trim_end().to_string()
}

/// A paragraph that is only a "read more" link.
fn is_read_more(lower: &str) -> bool {
    let words = strip_tags(lower);
    let words = words.trim_matches(|c: char| !c.is_alphanumeric());
    let words = words.split("](").next().unwrap_or(words);
    [
        "read more",
        "continue reading",
        "lire la suite",
        "lire plus",
        "continuer la lecture",
    ]
    .iter()
    .any(|phrase| {
        words.trim_start_matches('[').starts_with(phrase) && words.len() < phrase.len() + 40
    })
}

pub(super) fn strip_tags(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wordpress_furniture_is_removed_in_english_and_french() {
        let html = "<p>Les réseaux sociaux changent la relation client.</p>\n\
                    <p><a href=\"https://blog.example/a\">Lire la suite</a></p>\n\
                    <p>L’article <a href=\"https://blog.example/a\">Titre</a> est apparu en premier sur <a href=\"https://blog.example\">Veille</a>.</p>";
        assert_eq!(
            remove_boilerplate(html),
            "Les réseaux sociaux changent la relation client."
        );
        let html = "<p>A first paragraph that goes on [&#8230;]</p>\n<p>The post <a href=\"x\">T</a> appeared first on <a href=\"y\">Blog</a>.</p>";
        assert_eq!(remove_boilerplate(html), "A first paragraph that goes on");
    }
}
