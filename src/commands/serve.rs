//! `digestif serve`: the small HTTP endpoint behind `sender.unsubscribe_url`.
//!
//! - `POST <path>?token=T` unsubscribes at once and answers 200 with a page: no redirect,
//!   no login, whatever the body (RFC 8058 clients send `List-Unsubscribe=One-Click`).
//! - `GET <path>?token=T` only shows a page with a button that makes that POST: link
//!   scanners fetch every URL of a message, so a GET never unsubscribes anyone.
//! - A forged, altered or unknown token gets a 400 page that says so.
//! - `GET /healthz` answers `ok` for monitors.
//!
//! Requests are recorded in the opt-out store at once, never waiting for a send (see
//! [`crate::optout`]). tiny_http: synchronous, small, no async runtime; TLS is left to the
//! reverse proxy in front (nginx, Caddy), which RFC 8058's https requires anyway.

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use maud::{html, Markup, DOCTYPE};
use tiny_http::{Header, Method, Request, Response, Server};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::optout::{self, Left, Readers};
use crate::site;
use crate::subscribers::{Catalog, Status};
use crate::templates::{Strings, Templates};
use crate::token::Secret;

/// Worker threads: a click costs one SQLite commit; four keep a slow client from
/// holding up the others.
const WORKERS: usize = 4;
/// Longest request body read (a one-click body is 26 bytes).
const MAX_BODY: u64 = 8 * 1024;

/// What the endpoint needs, shared by the workers.
struct Endpoint {
    config: Config,
    catalog: Catalog,
    strings: Strings,
    path: String,
    secret_env: String,
    /// The list as last read, with the file's stamp then.
    readers: Mutex<(Option<Stamp>, Arc<Readers>)>,
}

/// `digestif serve`.
pub(crate) fn run(config_path: &Path, listen: &str) -> Result<ExitCode> {
    let config = Config::load(config_path)?;
    let Some(url) = config.sender.unsubscribe_url.clone() else {
        return Err(Error::Setting(
            "sender.unsubscribe_url is not set: `digestif serve` answers on its path, so set it to the https address the proxy forwards here".into(),
        ));
    };
    // Checked now, not at the first click.
    let secret = Secret::from_env(&config.sender.unsubscribe_secret_env)?;
    let catalog = site::catalog(&config);
    let strings = Templates::load(&config.templates_dir, &config.language)?.strings;
    let readers = Readers::load(&config, &catalog, Some(secret))?;
    let endpoint = Arc::new(Endpoint {
        path: url.path().trim_end_matches('/').to_string(),
        secret_env: config.sender.unsubscribe_secret_env.clone(),
        readers: Mutex::new((file_stamp(&config.subscribers), Arc::new(readers))),
        config,
        catalog,
        strings,
    });
    let server = Server::http(listen)
        .map_err(|e| Error::Usage(format!("--listen {listen}: cannot listen there ({e})")))?;
    let server = Arc::new(server);
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        let _ = signal_hook::flag::register(signal, Arc::clone(&stop));
    }
    say!(
        "serving {} on http://{listen} (one-click unsubscribe for {})",
        endpoint.path_or_root(),
        url
    );
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (server, endpoint, stop) = (
                Arc::clone(&server),
                Arc::clone(&endpoint),
                Arc::clone(&stop),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match server.recv_timeout(Duration::from_millis(250)) {
                        Ok(Some(request)) => endpoint.handle(request),
                        Ok(None) => {}
                        Err(e) => warn!("http: {e}"),
                    }
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    say!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// A response before it is written: status, page, extra headers.
struct Reply {
    status: u16,
    body: String,
    content_type: &'static str,
    allow: Option<&'static str>,
}

impl Endpoint {
    fn path_or_root(&self) -> &str {
        if self.path.is_empty() {
            "/"
        } else {
            &self.path
        }
    }

    fn handle(&self, mut request: Request) {
        let method = request.method().clone();
        let url = request.url().to_string();
        let (path, query) = url.split_once('?').unwrap_or((&url, ""));
        let token = query_token(query);
        let reply = match (path.trim_end_matches('/'), &method) {
            ("/healthz", Method::Get | Method::Head) => Reply::text(200, "ok\n"),
            (p, _) if p != self.path => Reply::page(404, self.page_message("404", "Not found")),
            (_, Method::Get | Method::Head) => self.confirm(token.as_deref()),
            (_, Method::Post) => {
                // The body is not needed (the token is in the URL), but it is read so the
                // connection stays usable; bounded so a client cannot feed us forever.
                let mut sink = Vec::new();
                let _ = std::io::Read::read_to_end(
                    &mut std::io::Read::take(request.as_reader(), MAX_BODY),
                    &mut sink,
                );
                self.unsubscribe(token.as_deref())
            }
            _ => Reply {
                allow: Some("GET, HEAD, POST"),
                ..Reply::text(405, "method not allowed\n")
            },
        };
        // One line per request, never with the query: the token is a credential.
        detail!("{method} {path} -> {}", reply.status);
        let _ = request.respond(reply.into_response(method == Method::Head));
    }

    /// The list, read again if the file changed since the last request.
    fn readers(&self) -> Result<Arc<Readers>> {
        let stamp = file_stamp(&self.config.subscribers);
        let mut cached = self.readers.lock().expect("readers lock");
        if cached.0 != stamp {
            let secret = Secret::from_env(&self.secret_env)?;
            let readers = Readers::load(&self.config, &self.catalog, Some(secret))?;
            *cached = (stamp, Arc::new(readers));
        }
        Ok(Arc::clone(&cached.1))
    }

    /// GET: who the link is for, and a button. Changes nothing.
    fn confirm(&self, token: Option<&str>) -> Reply {
        let readers = match self.readers() {
            Ok(r) => r,
            Err(e) => return self.failure(&e),
        };
        let Some((email, status)) = token
            .and_then(|t| readers.resolve(t))
            .and_then(|k| readers.get(&k).cloned())
        else {
            return self.invalid();
        };
        let s = &self.strings;
        let email = mask(&email);
        if status != Status::Active {
            return Reply::page(200, self.page(&self.fill(&s.leave_already, &email), None));
        }
        let action = format!(
            "{}?token={}",
            self.path_or_root(),
            token.unwrap_or_default()
        );
        let form = html! {
            form method="post" action=(action) {
                input type="hidden" name="List-Unsubscribe" value="One-Click";
                button type="submit" { (s.leave_button) }
            }
        };
        Reply::page(
            200,
            self.page(&self.fill(&s.leave_question, &email), Some(form)),
        )
    }

    /// POST: unsubscribe now.
    fn unsubscribe(&self, token: Option<&str>) -> Reply {
        let readers = match self.readers() {
            Ok(r) => r,
            Err(e) => return self.failure(&e),
        };
        let Some(key) = token.and_then(|t| readers.resolve(t)) else {
            return self.invalid();
        };
        let left = optout::leave(
            &self.config,
            &self.catalog,
            &readers,
            &key,
            Status::Unsubscribed,
            "web",
        );
        let s = &self.strings;
        match left {
            Ok(Left::Done { email } | Left::Waiting { email }) => {
                say!("unsubscribed {email} (web)");
                Reply::page(
                    200,
                    self.page(&self.fill(&s.leave_done, &mask(&email)), None),
                )
            }
            Ok(Left::Already { email, .. }) => Reply::page(
                200,
                self.page(&self.fill(&s.leave_already, &mask(&email)), None),
            ),
            Ok(Left::NotListed) => self.invalid(),
            Err(e) => self.failure(&e),
        }
    }

    fn invalid(&self) -> Reply {
        Reply::page(400, self.page(&self.strings.leave_invalid, None))
    }

    /// Our own failure (the store cannot be written): 500, so the reader's mail client
    /// or the reader tries again, and the operator sees why.
    fn failure(&self, e: &Error) -> Reply {
        warn!("{e}");
        Reply::page(
            500,
            self.page_message("500", "Server error: please try again later."),
        )
    }

    fn fill(&self, template: &str, email: &str) -> String {
        template
            .replace("{name}", &self.config.name)
            .replace("{email}", email)
    }

    fn page_message(&self, title: &str, message: &str) -> String {
        page_html(&self.config.language, title, message, None)
    }

    fn page(&self, message: &str, form: Option<Markup>) -> String {
        let title = self.fill(&self.strings.leave_title, "");
        page_html(&self.config.language, &title, message, form)
    }
}

/// A short, self-contained page (no external resources).
fn page_html(language: &str, title: &str, message: &str, form: Option<Markup>) -> String {
    html! {
        (DOCTYPE)
        html lang=(language) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex";
                title { (title) }
                style { "body{font:17px/1.5 system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#222}button{font:inherit;padding:.5rem 1.2rem;border-radius:6px;border:1px solid #555;background:#222;color:#fff;cursor:pointer}@media (prefers-color-scheme:dark){body{background:#111;color:#eee}button{background:#eee;color:#111}}" }
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
    fn text(status: u16, body: &str) -> Reply {
        Reply {
            status,
            body: body.to_string(),
            content_type: "text/plain; charset=utf-8",
            allow: None,
        }
    }

    fn page(status: u16, body: String) -> Reply {
        Reply {
            status,
            body,
            content_type: "text/html; charset=utf-8",
            allow: None,
        }
    }

    fn into_response(self, head: bool) -> Response<std::io::Cursor<Vec<u8>>> {
        let body = if head {
            Vec::new()
        } else {
            self.body.into_bytes()
        };
        let mut response = Response::from_data(body).with_status_code(self.status);
        let mut headers = vec![
            ("Content-Type", self.content_type),
            ("Cache-Control", "no-store"),
            ("Referrer-Policy", "no-referrer"),
            ("X-Content-Type-Options", "nosniff"),
            ("X-Frame-Options", "DENY"),
            (
                "Content-Security-Policy",
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
            ),
        ];
        if let Some(allow) = self.allow {
            headers.push(("Allow", allow));
        }
        for (name, value) in headers {
            if let Ok(h) = Header::from_bytes(name.as_bytes(), value.as_bytes()) {
                response.add_header(h);
            }
        }
        response
    }
}

/// The `token` query parameter.
fn query_token(query: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
}

/// `camille@example.org` → `c…@example.org`: enough for a reader to recognise their
/// address, not enough to give it away to whoever was forwarded the link.
fn mask(email: &str) -> String {
    match email.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}…@{domain}")
        }
        None => "…".into(),
    }
}

/// A file's (modification time, length): it changed when this does.
type Stamp = (SystemTime, u64);

fn file_stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
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

    #[test]
    fn the_token_comes_from_the_query_only() {
        assert_eq!(query_token("a=1&token=0a1b&x").as_deref(), Some("0a1b"));
        assert_eq!(query_token("tokens=1"), None);
        assert_eq!(query_token(""), None);
    }
}
