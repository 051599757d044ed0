//! `digestif serve`'s HTTP layer: routes, pages and limits for the endpoint behind
//! `sender.unsubscribe_url`. What a request means for the list is the audience's
//! ([`crate::audience::optout`]); this room never touches the list file itself.
//!
//! - `POST <path>?token=T` unsubscribes at once and answers 200 with a page: no redirect,
//!   no login, whatever the body (RFC 8058 clients send `List-Unsubscribe=One-Click`).
//! - `GET <path>?token=T` only shows a page with a button that makes that POST: link
//!   scanners fetch every URL of a message, so a GET never unsubscribes anyone.
//! - A forged, altered or unknown token gets a 400 page that says so.
//! - `GET /healthz` answers `ok` for monitors.
//!
//! The server itself ([`server`]) defends the endpoint against slow and greedy clients;
//! TLS is left to the reverse proxy in front (nginx, Caddy), which RFC 8058's https
//! requires anyway. Nothing here prints: what happens is told to the caller as [`Event`]s.

mod form;
mod join;
mod limits;
pub(crate) mod mailer;
mod pages;
mod prefs;
mod server;

pub(crate) use form::markup as subscribe_form;
use server::Request;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use hyper::Method;
use maud::html;

use crate::audience::optout::{self, FoldJob, Folder, Indexed, Optouts, Recorder, TokenIndex};
use crate::audience::subscribers::{Catalog, Status};
use crate::audience::token::Secret;
use crate::clock::Clock;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::templates::{Strings, Templates};
use pages::{mask, page_html, Reply};

/// What happened, for the caller to log.
pub(crate) enum Event<'a> {
    /// One request answered (never with its query: the token is a credential).
    Answered {
        method: &'a Method,
        path: &'a str,
        status: u16,
    },
    /// A reader left through the endpoint.
    Left { email: &'a str },
    /// A reader confirmed their subscription.
    Joined { email: &'a str },
    /// A confirmation mail was dropped: too many wait for the relay.
    MailDropped,
    /// Our own failure (the store cannot be written), answered with a 500.
    Failed(&'a Error),
    /// The HTTP layer could not take a request.
    Http(&'a std::io::Error),
}

/// Where handlers tell what happened.
type Log = fn(Event<'_>);

/// What the endpoint needs, shared by the workers.
pub(crate) struct Endpoint {
    config: Config,
    catalog: Catalog,
    strings: Strings,
    /// The unsubscribe path (`sender.unsubscribe_url`'s).
    path: String,
    /// `web.url`'s path without its last `/`: the forms answer under it. `None`: no
    /// `[web] url`, unsubscribe only.
    base: Option<String>,
    /// Who each token names, without reading the list.
    index: Arc<TokenIndex>,
    /// Requests to leave, made durable in batches.
    recorder: Recorder,
    /// Writes accepted requests into the list, a batch at a time.
    folder: Arc<Folder>,
    fold_thread: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
    mailer: Option<mailer::Mailer>,
    clients: limits::Clients,
    clock: Clock,
}

impl Endpoint {
    /// The endpoint for `config`: its path, wording and readers; the secret is checked now,
    /// not at the first click, and the reader index brought up to date in the background.
    /// `report` hears what becomes of each confirmation mail, `fold_failed` why accepted
    /// requests could not be written into the list yet.
    pub(crate) fn new(
        config: Config,
        catalog: Catalog,
        clock: Clock,
        report: fn(mailer::Sent),
        fold_failed: fn(&Error),
    ) -> Result<Endpoint> {
        let Some(url) = config.sender.unsubscribe_url.clone() else {
            return Err(Error::Setting(
                "neither web.url nor sender.unsubscribe_url is set: `digestif serve` answers under that address, so set web.url to the https address the proxy forwards here".into(),
            ));
        };
        let strings = Templates::load(&config.templates_dir, &config.language)?.strings;
        let secret = Secret::from_env(&config.sender.unsubscribe_secret_env)?;
        let index = Arc::new(TokenIndex::open(&config, &catalog, secret)?);
        index.refresh();
        let recorder = Recorder::start(&config.state_dir, clock)?;
        let (folder, fold_thread) = Folder::start(FoldJob {
            config: config.clone(),
            catalog: catalog.clone(),
            clock,
            index: Arc::clone(&index),
            remembered: recorder.remembered(),
            report: fold_failed,
        });
        let base = config
            .web
            .url
            .as_ref()
            .map(|u| u.path().trim_end_matches('/').to_string());
        let mailer = match base {
            Some(_) => Some(mailer::Mailer::start(&config, clock, report)?),
            None => None,
        };
        let clients = limits::Clients::new(config.web.per_client_per_hour, config.web.max_clients);
        Ok(Endpoint {
            path: url.path().trim_end_matches('/').to_string(),
            base,
            config,
            catalog,
            strings,
            index,
            recorder,
            folder,
            fold_thread: std::sync::Mutex::new(Some(fold_thread)),
            mailer,
            clients,
            clock,
        })
    }

    /// The path of one of the forms' routes (`subscribe`, `confirm`).
    fn route(&self, name: &str) -> String {
        format!("{}/{name}", self.base.as_deref().unwrap_or(""))
    }

    /// The public address of one of the forms' routes, for links in mails.
    fn public(&self, name: &str) -> String {
        let url = self.config.web.url.as_ref();
        url.and_then(|u| u.join(name).ok())
            .map(|u| u.to_string())
            .unwrap_or_else(|| self.route(name))
    }

    /// The path the endpoint answers on, as a person reads it.
    pub(crate) fn path_or_root(&self) -> &str {
        if self.path.is_empty() {
            "/"
        } else {
            &self.path
        }
    }

    /// Answer requests on `listener` until `stop` is set (see [`server`]); what was
    /// accepted is written into the list before this returns.
    pub(crate) fn serve(
        self: &Arc<Self>,
        listener: std::net::TcpListener,
        stop: &Arc<AtomicBool>,
        log: Log,
    ) -> std::io::Result<()> {
        let served = server::run(self, listener, stop, log);
        self.folder.stop();
        let thread = self.fold_thread.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread {
            let _ = thread.join();
        }
        served
    }

    /// Is `path` one of the addresses monitors ask whether we are up?
    fn is_healthz(&self, path: &str) -> bool {
        let path = path.trim_end_matches('/');
        path == "/healthz" || self.join_route(path) == Some("healthz")
    }

    /// Something was recorded for the list: fold it in soon.
    fn recorded(&self) {
        self.folder.nudge();
    }

    /// The secret tokens are made with.
    fn secret(&self) -> &Secret {
        self.index.secret()
    }

    /// The reader `token` names, with their status as it will be once what waits is
    /// written into the list.
    fn reader(&self, token: Option<&str>) -> Result<Option<Indexed>> {
        let Some(token) = token else {
            return Ok(None);
        };
        let Some(mut reader) = self.index.find(token)? else {
            return Ok(None);
        };
        let recorded = self.recorder.recorded_for(&reader.key);
        if let Some(id) = recorded.filter(|_| reader.status == Status::Active) {
            if Optouts::open(&self.config.state_dir, self.clock)?.waits(id, &reader.key)? {
                reader.status = Status::Unsubscribed;
            } else {
                // Written into the list by a fold that may not have told the index yet.
                self.index.wait_for_fold();
                return self.index.find(token);
            }
        }
        Ok(Some(reader))
    }

    fn handle(&self, request: &Request, log: Log) -> Reply {
        let method = &request.method;
        let path = request.path.trim_end_matches('/');
        let token = query_token(&request.query);
        let reply = match self.join_route(path) {
            Some(route) => self.join(route, request, token.as_deref(), log),
            None => self.leave(path, request, token.as_deref(), log),
        };
        log(Event::Answered {
            method,
            path,
            status: reply.status,
        });
        reply
    }

    /// Which of the forms' routes `path` is, if any.
    fn join_route<'p>(&self, path: &'p str) -> Option<&'p str> {
        let rest = path
            .strip_prefix(self.base.as_deref()?)?
            .strip_prefix('/')?;
        ["subscribe", "confirm", "preferences", "healthz"]
            .contains(&rest)
            .then_some(rest)
    }

    fn join(&self, route: &str, request: &Request, token: Option<&str>, log: Log) -> Reply {
        match (route, &request.method) {
            ("subscribe", &Method::GET | &Method::HEAD) => self.subscribe_page(),
            ("subscribe", &Method::POST) => self.subscribe(request, log),
            ("confirm", &Method::GET | &Method::HEAD) => self.confirm_page(token, log),
            ("preferences", &Method::GET | &Method::HEAD) => self.preferences_page(token, log),
            ("preferences", &Method::POST) => self.save_preferences(request, token, log),
            ("confirm", &Method::POST) => self.confirm(token, log),
            _ => Reply {
                allow: Some("GET, HEAD, POST"),
                ..Reply::text(405, "method not allowed\n")
            },
        }
    }

    /// The unsubscribe path, as before `[web]` (`/healthz` is answered by [`server`]).
    fn leave(&self, path: &str, request: &Request, token: Option<&str>, log: Log) -> Reply {
        match (path, &request.method) {
            (p, _) if p != self.path => Reply::page(404, self.page_message("404", "Not found")),
            (_, &Method::GET | &Method::HEAD) => self.confirm_leave(token, log),
            // The body is not needed: the token is in the URL.
            (_, &Method::POST) => self.unsubscribe(token, log),
            _ => Reply {
                allow: Some("GET, HEAD, POST"),
                ..Reply::text(405, "method not allowed\n")
            },
        }
    }

    /// GET: who the link is for, and a button. Changes nothing.
    fn confirm_leave(&self, token: Option<&str>, log: Log) -> Reply {
        let reader = match self.reader(token) {
            Ok(Some(r)) => r,
            Ok(None) => return self.invalid(),
            Err(e) => return self.failure(&e, log),
        };
        let s = &self.strings;
        let email = mask(&reader.email);
        if reader.status != Status::Active {
            return Reply::page(200, self.page(&self.fill(&s.leave_already, &email), None));
        }
        let action = format!(
            "{}?token={}",
            self.path_or_root(),
            token.unwrap_or_default()
        );
        // Someone who only wanted fewer topics, or a break, may stay.
        let prefs = self.base.as_ref().map(|_| {
            let link = format!(
                "{}?token={}",
                self.route("preferences"),
                token.unwrap_or_default()
            );
            (link, self.fill(&s.prefs_title, ""))
        });
        let form = html! {
            form method="post" action=(action) {
                input type="hidden" name="List-Unsubscribe" value="One-Click";
                button type="submit" { (s.leave_button) }
            }
            @if let Some((link, title)) = prefs {
                p { a href=(link) { (title) } }
            }
        };
        let question = self.fill(&s.leave_question, &email);
        Reply::page(200, self.page(&question, Some(form)))
    }

    /// POST: unsubscribe now: durable in the store before the answer, written into the
    /// list with the next fold.
    fn unsubscribe(&self, token: Option<&str>, log: Log) -> Reply {
        let reader = match token.map(|t| self.index.find(t)).transpose() {
            Ok(Some(Some(r))) => r,
            Ok(_) => return self.invalid(),
            Err(e) => return self.failure(&e, log),
        };
        let s = &self.strings;
        let status = Status::Unsubscribed;
        let recorded = if optout::already_left(reader.status, status) {
            Ok(false)
        } else {
            self.recorder.record(&reader.key, status, "web")
        };
        match recorded {
            Ok(true) => {
                self.recorded();
                log(Event::Left {
                    email: &reader.email,
                });
                let done = self.fill(&s.leave_done, &mask(&reader.email));
                Reply::page(200, self.page(&done, None))
            }
            Ok(false) => {
                let already = self.fill(&s.leave_already, &mask(&reader.email));
                Reply::page(200, self.page(&already, None))
            }
            Err(e) => self.failure(&e, log),
        }
    }

    fn invalid(&self) -> Reply {
        Reply::page(400, self.page(&self.strings.leave_invalid, None))
    }

    /// Our own failure (the store cannot be written): 500, so the reader's mail client
    /// or the reader tries again, and the operator sees why.
    fn failure(&self, e: &Error, log: Log) -> Reply {
        log(Event::Failed(e));
        let message = self.page_message("500", "Server error: please try again later.");
        Reply::page(500, message)
    }

    fn fill(&self, template: &str, email: &str) -> String {
        crate::text::fill_placeholders(template, &[("name", &self.config.name), ("email", email)])
    }

    fn page_message(&self, title: &str, message: &str) -> String {
        page_html(&self.config.language, title, message, None)
    }

    fn page(&self, message: &str, form: Option<maud::Markup>) -> String {
        self.titled(&self.strings.leave_title, message, form)
    }

    /// A page whose title is the wording `title` (which may name the newsletter).
    fn titled(&self, title: &str, message: &str, form: Option<maud::Markup>) -> String {
        page_html(&self.config.language, &self.fill(title, ""), message, form)
    }
}

/// The `token` query parameter.
fn query_token(query: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_comes_from_the_query_only() {
        assert_eq!(query_token("a=1&token=0a1b&x").as_deref(), Some("0a1b"));
        assert_eq!(query_token("tokens=1"), None);
        assert_eq!(query_token(""), None);
    }
}
