//! The endpoint's pages and responses: short, self-contained (no external resources), with
//! headers that keep them out of caches, frames and referrers.

use maud::{html, Markup, DOCTYPE};

/// A response before it is written: status, page, extra headers.
pub(super) struct Reply {
    pub status: u16,
    pub body: String,
    pub content_type: &'static str,
    pub allow: Option<&'static str>,
    /// Where a redirect goes.
    pub location: Option<String>,
    /// Any origin may read it (JSON answers to a blog's own script).
    pub any_origin: bool,
    /// Seconds to wait before trying again (a 503).
    pub retry_after: Option<&'static str>,
}

/// A short, self-contained page (no external resources).
pub(super) fn page_html(
    language: &str,
    title: &str,
    message: &str,
    form: Option<Markup>,
) -> String {
    html! {
        (DOCTYPE)
        html lang=(language) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex";
                title { (title) }
                style { "body{font:17px/1.5 system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#222}input{font:inherit}fieldset{border:1px solid #767676;border-radius:6px;margin:0 0 1rem}a{color:#0645ad}@media (prefers-color-scheme:dark){a{color:#9cf}}button{font:inherit;padding:.5rem 1.2rem;border-radius:6px;border:1px solid #555;background:#222;color:#fff;cursor:pointer}@media (prefers-color-scheme:dark){body{background:#111;color:#eee}button{background:#eee;color:#111}}" }
            }
            body {
                main {
                    h1 { (title) }
                    p { (message) }
                    @if let Some(form) = form { (form) }
                }
            }
        }
    }
    .into_string()
}

impl Reply {
    pub(super) fn text(status: u16, body: &str) -> Reply {
        Reply {
            status,
            body: body.to_string(),
            content_type: "text/plain; charset=utf-8",
            allow: None,
            location: None,
            any_origin: false,
            retry_after: None,
        }
    }

    pub(super) fn json(status: u16, body: String) -> Reply {
        Reply {
            content_type: "application/json",
            any_origin: true,
            ..Reply::page(status, body)
        }
    }

    /// 303 See Other: the browser GETs `location`.
    pub(super) fn redirect(location: &str) -> Reply {
        Reply {
            location: Some(location.to_string()),
            ..Reply::text(303, "")
        }
    }

    pub(super) fn page(status: u16, body: String) -> Reply {
        Reply {
            status,
            body,
            content_type: "text/html; charset=utf-8",
            allow: None,
            location: None,
            any_origin: false,
            retry_after: None,
        }
    }

    /// Status, headers and body as they go out (no body for a `HEAD`).
    pub(super) fn into_parts(self, head: bool) -> (u16, Vec<(&'static str, String)>, Vec<u8>) {
        let body = if head {
            Vec::new()
        } else {
            self.body.into_bytes()
        };
        let mut headers: Vec<(&'static str, String)> = [
            ("Content-Type", self.content_type),
            ("Cache-Control", "no-store"),
            ("Referrer-Policy", "no-referrer"),
            ("X-Content-Type-Options", "nosniff"),
            ("X-Frame-Options", "DENY"),
            (
                "Content-Security-Policy",
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
            ),
        ]
        .into_iter()
        .map(|(name, value)| (name, value.to_string()))
        .collect();
        let optional = [
            ("Allow", self.allow.map(str::to_string)),
            ("Location", self.location),
            (
                "Access-Control-Allow-Origin",
                self.any_origin.then(|| "*".to_string()),
            ),
            ("Retry-After", self.retry_after.map(str::to_string)),
        ];
        headers.extend(
            optional
                .into_iter()
                .filter_map(|(name, value)| Some((name, value?))),
        );
        (self.status, headers, body)
    }
}

/// `camille@example.org` → `c…@example.org`: enough for a reader to recognise their
/// address, not enough to give it away to whoever was forwarded the link.
pub(super) fn mask(email: &str) -> String {
    match email.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}…@{domain}")
        }
        None => "…".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_masked_on_pages() {
        assert_eq!(mask("camille@example.org"), "c…@example.org");
        assert_eq!(mask("é@bücher.example"), "é…@bücher.example");
        assert_eq!(mask("nonsense"), "…");
    }
}
