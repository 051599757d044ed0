//! A WordPress export file (Tools → Export, "WXR": RSS 2.0 with `wp:` elements) read as
//! WordPress defines it. feed-rs would read it as a plain feed and mail every item in it:
//! private and draft posts, pages, attachments. Here only `wp:post_type = post` with
//! `wp:status = publish` and no password becomes an item.

use chrono::{DateTime, NaiveDateTime, Utc};
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::Item;

/// An export file says so in its namespace declarations, at its top.
pub(super) fn is_wxr(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(8192)];
    memchr::memmem::find(head, b"wordpress.org/export/").is_some()
}

/// What an export gives: its published posts, and the channel's language.
pub(super) struct Export {
    pub items: Vec<Item>,
    pub language: Option<String>,
}

/// The fields of one `<item>` as read.
#[derive(Default)]
struct Raw {
    title: String,
    link: String,
    guid: String,
    post_id: String,
    date_gmt: String,
    pub_date: String,
    status: String,
    post_type: String,
    password: String,
    excerpt: String,
    content: String,
    categories: Vec<String>,
}

/// Read an export; `Err` says why it is not one.
pub(super) fn read(bytes: &[u8]) -> Result<Export, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8 text: {e}"))?;
    let mut reader = Reader::from_str(text);
    let mut path: Vec<String> = Vec::new();
    let mut item: Option<Raw> = None;
    let mut field = String::new();
    let mut category_domain: Option<String> = None;
    let mut export = Export {
        items: Vec::new(),
        language: None,
    };
    loop {
        let event = reader.read_event().map_err(|e| {
            format!(
                "not well-formed XML at byte {}: {e}",
                reader.buffer_position()
            )
        })?;
        match event {
            Event::Start(start) => {
                let name = start.name();
                let name = name.as_ref().to_string();
                if name == "item" && path.last().is_some_and(|p| p == "channel") {
                    item = Some(Raw::default());
                } else if name == "category" && item.is_some() {
                    category_domain = attribute(&start, "domain");
                }
                path.push(name);
                field.clear();
            }
            Event::Text(t) => field.push_str(&t.xml10_content()),
            Event::CData(c) => field.push_str(&c.xml10_content()),
            Event::GeneralRef(r) => match r.resolve_char_ref() {
                Ok(Some(c)) => field.push(c),
                _ => field
                    .push_str(quick_xml::escape::resolve_predefined_entity(&r).unwrap_or_default()),
            },
            Event::End(_) => {
                let Some(name) = path.pop() else { continue };
                let value = std::mem::take(&mut field);
                if name == "item" {
                    if let Some(raw) = item.take() {
                        export.items.extend(published(raw));
                    }
                } else if let Some(raw) = item.as_mut() {
                    set(raw, &name, value, category_domain.take());
                } else if name == "language" && path.last().is_some_and(|p| p == "channel") {
                    export.language = Some(value.trim().to_string()).filter(|l| !l.is_empty());
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(export)
}

fn attribute(start: &BytesStart, key: &str) -> Option<String> {
    start.try_get_attribute(key).ok().flatten().and_then(|a| {
        a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .ok()
            .map(std::borrow::Cow::into_owned)
    })
}

/// Keep `value` if `name` is a field we read.
fn set(raw: &mut Raw, name: &str, value: String, domain: Option<String>) {
    match name {
        "title" => raw.title = value,
        "link" => raw.link = value.trim().to_string(),
        "guid" => raw.guid = value.trim().to_string(),
        "pubDate" => raw.pub_date = value.trim().to_string(),
        "wp:post_id" => raw.post_id = value.trim().to_string(),
        "wp:post_date_gmt" => raw.date_gmt = value.trim().to_string(),
        "wp:status" => raw.status = value.trim().to_string(),
        "wp:post_type" => raw.post_type = value.trim().to_string(),
        "wp:post_password" => raw.password = value,
        "excerpt:encoded" => raw.excerpt = value,
        "content:encoded" => raw.content = value,
        "category" if domain.as_deref() == Some("category") => {
            let value = value.trim().to_string();
            if !value.is_empty() {
                raw.categories.push(value);
            }
        }
        _ => {}
    }
}

/// The item, if WordPress shows it to everyone as a post.
fn published(raw: Raw) -> Option<Item> {
    if raw.post_type != "post" || raw.status != "publish" || !raw.password.is_empty() {
        return None;
    }
    let date = NaiveDateTime::parse_from_str(&raw.date_gmt, "%Y-%m-%d %H:%M:%S")
        .ok()
        .map(|d| d.and_utc())
        .or_else(|| {
            DateTime::parse_from_rfc2822(&raw.pub_date)
                .ok()
                .map(|d| d.with_timezone(&Utc))
        })?;
    let summary = if raw.excerpt.trim().is_empty() {
        crate::sources::excerpt(None, &raw.content)
    } else {
        raw.excerpt
    };
    let id = [raw.guid, raw.post_id, raw.link.clone()]
        .into_iter()
        .find(|s| !s.is_empty())?;
    Some(Item {
        id,
        title: raw.title,
        date,
        link: Some(raw.link).filter(|l| !l.is_empty()),
        categories: raw.categories,
        summary,
    })
}
