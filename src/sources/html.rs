//! HTML as feeds and generators write it (a summary, a body that is HTML) turned into the
//! Markdown the digest renders: paragraphs, line breaks, emphasis, code, links, images,
//! lists, quotes, headings, rules. html5ever's tokenizer reads it: the parser ammonia and
//! css-inline use too, so the binary carries one HTML stack. What a reader would not see
//! (`script`, `style`, `noscript`, `template`, comments) gives no text.

use std::cell::RefCell;

use html5ever::tokenizer::states::RawKind;
use html5ever::tokenizer::{
    BufferQueue, Tag, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};

/// `html` as Markdown; text keeps its words, whatever markup it sits in.
pub(crate) fn to_markdown(html: &str) -> String {
    let tokenizer = Tokenizer::new(Writer::default(), TokenizerOpts::default());
    let input = BufferQueue::default();
    input.push_back(html.into());
    let _ = tokenizer.feed(&input);
    tokenizer.end();
    let writer = tokenizer.sink.0.into_inner();
    writer.finish()
}

/// The tokenizer's sink: the Markdown so far (html5ever hands tokens through `&self`).
#[derive(Default)]
struct Writer(RefCell<Markdown>);

impl TokenSink for Writer {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        let mut md = self.0.borrow_mut();
        match token {
            Token::TagToken(tag) => return md.tag(&tag),
            Token::CharacterTokens(text) => md.text(&text),
            _ => {}
        }
        TokenSinkResult::Continue
    }
}

/// The Markdown being written.
#[derive(Default)]
struct Markdown {
    blocks: Vec<String>,
    current: String,
    /// Open lists: the next number of an ordered one.
    lists: Vec<Option<u32>>,
    /// Open links: their target.
    links: Vec<Option<String>>,
    quote_depth: usize,
    in_pre: bool,
    /// Inside an element whose text is not shown (`script`, `style`…).
    hidden: Option<String>,
}

impl Markdown {
    fn tag(&mut self, tag: &Tag) -> TokenSinkResult<()> {
        let name: &str = &tag.name;
        if let Some(hidden) = &self.hidden {
            if tag.kind == TagKind::EndTag && hidden == name {
                self.hidden = None;
            }
            return TokenSinkResult::Continue;
        }
        let start = tag.kind == TagKind::StartTag;
        match (name, start) {
            ("script", true) => return self.hide(name, RawKind::ScriptData),
            ("style" | "noscript" | "template" | "iframe", true) => {
                return self.hide(name, RawKind::Rawtext)
            }
            (
                "p" | "div" | "section" | "article" | "header" | "footer" | "figure" | "table"
                | "tr",
                _,
            ) => self.end_block(),
            ("br", true) => self.current.push_str("  \n"),
            ("hr", true) => {
                self.end_block();
                self.blocks.push("---".into());
            }
            ("h1" | "h2" | "h3" | "h4" | "h5" | "h6", true) => {
                self.end_block();
                let level = usize::from(name.as_bytes()[1] - b'0');
                self.current.push_str(&format!("{} ", "#".repeat(level)));
            }
            ("h1" | "h2" | "h3" | "h4" | "h5" | "h6", false) => self.end_block(),
            ("strong" | "b", _) => self.current.push_str("**"),
            ("em" | "i", _) => self.current.push('*'),
            ("code", _) if !self.in_pre => self.current.push('`'),
            ("pre", true) => {
                self.end_block();
                self.in_pre = true;
                self.current.push_str("```\n");
            }
            ("pre", false) => {
                self.current.push_str("\n```");
                self.in_pre = false;
                self.end_block();
            }
            ("blockquote", true) => {
                self.end_block();
                self.quote_depth += 1;
            }
            ("blockquote", false) => {
                self.end_block();
                self.quote_depth = self.quote_depth.saturating_sub(1);
            }
            ("ul" | "ol", true) => {
                self.end_block();
                self.lists.push((name == "ol").then_some(1));
            }
            ("ul" | "ol", false) => {
                self.end_block();
                self.lists.pop();
            }
            ("li", true) => self.list_item(),
            ("li", false) => self.end_block(),
            ("a", true) => {
                self.links.push(attribute(tag, "href"));
                self.current.push('[');
            }
            ("a", false) => self.end_link(),
            ("img", true) => self.image(tag),
            _ => {}
        }
        TokenSinkResult::Continue
    }

    /// Show nothing until `</name>`; the tokenizer reads the content as raw text.
    fn hide(&mut self, name: &str, kind: RawKind) -> TokenSinkResult<()> {
        self.hidden = Some(name.to_string());
        TokenSinkResult::RawData(kind)
    }

    fn text(&mut self, text: &str) {
        if self.hidden.is_some() {
            return;
        }
        if self.in_pre {
            self.current.push_str(text);
            return;
        }
        // HTML's white space: runs are one space, and none opens a block.
        let mut last_space = self.current.is_empty() || self.current.ends_with([' ', '\n']);
        for c in text.chars() {
            if c.is_whitespace() {
                if !last_space {
                    self.current.push(' ');
                }
                last_space = true;
                continue;
            }
            if matches!(c, '\\' | '*' | '_' | '`' | '[' | ']') {
                self.current.push('\\');
            }
            self.current.push(c);
            last_space = false;
        }
    }

    fn list_item(&mut self) {
        self.end_block();
        let marker = match self.lists.last_mut() {
            Some(Some(n)) => {
                *n += 1;
                format!("{}. ", *n - 1)
            }
            _ => "- ".to_string(),
        };
        self.current
            .push_str(&"  ".repeat(self.lists.len().saturating_sub(1)));
        self.current.push_str(&marker);
    }

    fn end_link(&mut self) {
        match self.links.pop().flatten().filter(|h| !h.trim().is_empty()) {
            Some(href) => self.current.push_str(&format!("]({})", href.trim())),
            None => {
                // A link without a target: only its text. Drop the `[` it opened.
                if let Some(open) = self.current.rfind('[') {
                    self.current.remove(open);
                }
            }
        }
    }

    fn image(&mut self, tag: &Tag) {
        let Some(src) = attribute(tag, "src").filter(|s| !s.trim().is_empty()) else {
            return;
        };
        let alt = attribute(tag, "alt").unwrap_or_default();
        let alt = alt.replace(['[', ']'], "");
        self.current
            .push_str(&format!("![{}]({})", alt.trim(), src.trim()));
    }

    /// Close the block being written, if it has any text.
    fn end_block(&mut self) {
        let text = std::mem::take(&mut self.current);
        let text = if self.in_pre {
            text
        } else {
            text.trim().to_string()
        };
        if text.is_empty() || text == "-" {
            return;
        }
        let prefix = "> ".repeat(self.quote_depth);
        let quoted = text
            .lines()
            .map(|l| format!("{prefix}{l}"))
            .collect::<Vec<_>>()
            .join("\n");
        self.blocks.push(quoted);
    }

    fn finish(mut self) -> String {
        self.end_block();
        self.blocks.join("\n\n")
    }
}

fn attribute(tag: &Tag, name: &str) -> Option<String> {
    tag.attrs
        .iter()
        .find(|a| &*a.name.local == name)
        .map(|a| a.value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_emphasis_and_links_become_markdown() {
        assert_eq!(
            to_markdown("<p>Un <strong>résumé</strong>,\n  en <em>HTML</em>.</p><p>Voir <a href=\"https://e.org/a\">ceci</a>.</p>"),
            "Un **résumé**, en *HTML*.\n\nVoir [ceci](https://e.org/a)."
        );
    }

    #[test]
    fn lists_quotes_code_and_images_keep_their_shape() {
        let html = "<ul><li>un</li><li>deux</li></ul><ol><li>a</li><li>b</li></ol>\
                    <blockquote><p>cité</p></blockquote><pre><code>x = 1\ny *= 2</code></pre>\
                    <p><img src=\"/i.png\" alt=\"Une image\"> et <code>a_b</code></p>";
        assert_eq!(
            to_markdown(html),
            "- un\n\n- deux\n\n1. a\n\n2. b\n\n> cité\n\n```\nx = 1\ny *= 2\n```\n\n![Une image](/i.png) et `a\\_b`"
        );
    }

    #[test]
    fn scripts_styles_and_comments_give_no_text_and_entities_are_decoded() {
        let html = "<p>Avant<script>var a = '<p>non</p>';</script><style>p{}</style>\
                    <!-- caché --> après &amp; &#8230; [&hellip;]</p>";
        assert_eq!(to_markdown(html), "Avant après & … \\[…\\]");
    }
}
