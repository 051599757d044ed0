//! Joining (double opt-in): `POST <url>subscribe` records a request and mails a link,
//! `GET <url>confirm` shows a button, and only the `POST` of that button subscribes (link
//! scanners follow every URL of a mail). Every answer to a valid request is the same,
//! whether the address is new, waiting, listed or gone: the form tells nobody who is on
//! the list.

use std::net::IpAddr;

use maud::html;

use super::form::{self, Form};
use super::mailer::ConfirmMail;
use super::pages::{mask, Reply};
use super::server::Request;
use super::{Endpoint, Event, Log};
use crate::audience::optout::{Asked, JoinRequest, Optouts, Prefs, CONFIRM_DAYS};
use crate::audience::subscribers::address_key;

impl Endpoint {
    /// `GET <url>subscribe`: the form, served by us, with the time it was served (signed),
    /// so that a form sent back sooner than `web.min_fill_seconds` is known for a program.
    pub(super) fn subscribe_page(&self) -> Reply {
        let stamp = self
            .secret()
            .confirm_token("form", self.clock.now().timestamp());
        let action = self.route("subscribe");
        let form = form::markup(&self.config, &self.strings, &action, Some(&stamp));
        Reply::page(200, self.join_page(None, Some(form)))
    }

    /// `POST <url>subscribe`.
    pub(super) fn subscribe(&self, request: &Request, log: Log) -> Reply {
        let web = &self.config.web;
        let body = &request.body;
        let wants_json = request.header("Accept").is_some_and(|a| a.contains("json"));
        if !self.clients.allow(client_ip(request)) {
            return self.busy(429, wants_json);
        }
        let form = Form::parse(body, &self.config.categories);
        if form.is_a_program(
            self.secret(),
            self.clock.now().timestamp(),
            web.min_fill_seconds,
        ) {
            // Answered as a person would be, so the program learns nothing.
            return self.check_inbox(wants_json);
        }
        let Some(email) = form.email.clone() else {
            let message = self.fill(&self.strings.join_invalid_email, "");
            return self.answer(400, "invalid-email", &message, wants_json);
        };
        let join = JoinRequest {
            key: address_key(&email),
            email: email.to_string(),
            prefs: Prefs {
                name: form.name.clone(),
                categories: form.categories.clone(),
                format: form.format.clone(),
                language: None,
            },
            form: request
                .header("Origin")
                .or_else(|| request.header("Referer"))
                .map(|page| {
                    page.split(['?', '#'])
                        .next()
                        .unwrap_or_default()
                        .to_string()
                })
                .unwrap_or_else(|| "web".into()),
            ip: web.record_ip.then(|| client_ip(request).to_string()),
        };
        let asked = Optouts::open(&self.config.state_dir, self.clock)
            .and_then(|store| store.ask_to_join(&join, web.max_pending));
        match asked {
            Ok(Asked::Mail { id }) => self.mail_link(email, &id, log),
            Ok(Asked::Quiet) => {}
            Ok(Asked::Full) => return self.busy(503, wants_json),
            Err(e) => return self.failure(&e, log),
        }
        self.check_inbox(wants_json)
    }

    /// Queue the confirmation mail for pending request `id`.
    fn mail_link(&self, to: lettre::Address, id: &str, log: Log) {
        let Some(mailer) = &self.mailer else { return };
        let expires = self.clock.now().timestamp() + CONFIRM_DAYS * 86_400;
        let token = self.secret().confirm_token(id, expires);
        let link = format!("{}?token={token}", self.public("confirm"));
        let s = &self.strings;
        let days = CONFIRM_DAYS.to_string();
        let values = [
            ("name", self.config.name.as_str()),
            ("link", &link),
            ("days", &days),
        ];
        let mail = ConfirmMail {
            to,
            subject: crate::text::fill_placeholders(&s.join_mail_subject, &values),
            text: crate::text::fill_placeholders(&s.join_mail_text, &values),
        };
        if !mailer.queue(mail) {
            log(Event::MailDropped);
        }
    }

    /// `GET <url>confirm?token=T`: the question and a button. Changes nothing.
    pub(super) fn confirm_page(&self, token: Option<&str>, log: Log) -> Reply {
        let Some(id) = self.pending_id(token) else {
            return self.join_invalid();
        };
        let store = match Optouts::open(&self.config.state_dir, self.clock) {
            Ok(store) => store,
            Err(e) => return self.failure(&e, log),
        };
        let email = match store.pending_join(&id) {
            Ok(Some(email)) => email,
            Ok(None) => return self.join_invalid(),
            Err(e) => return self.failure(&e, log),
        };
        let s = &self.strings;
        let action = format!(
            "{}?token={}",
            self.route("confirm"),
            token.unwrap_or_default()
        );
        let button = html! {
            form method="post" action=(action) {
                button type="submit" { (s.join_confirm_button) }
            }
        };
        let question = self.fill(&s.join_confirm_question, &mask(&email));
        Reply::page(200, self.join_page(Some(&question), Some(button)))
    }

    /// `POST <url>confirm?token=T`: the reader joins (recorded now, written into the list
    /// with the next fold, or when the running send or edit ends).
    pub(super) fn confirm(&self, token: Option<&str>, log: Log) -> Reply {
        let Some(id) = self.pending_id(token) else {
            return self.join_invalid();
        };
        let confirmed = Optouts::open(&self.config.state_dir, self.clock)
            .and_then(|store| store.confirm_join(&id));
        let email = match confirmed {
            Ok(Some(email)) => email,
            Ok(None) => return self.join_invalid(),
            Err(e) => return self.failure(&e, log),
        };
        log(Event::Joined { email: &email });
        self.recorded();
        let done = self.fill(&self.strings.join_done, &mask(&email));
        Reply::page(200, self.join_page(Some(&done), None))
    }

    fn pending_id(&self, token: Option<&str>) -> Option<String> {
        let id = self
            .secret()
            .verify_confirm(token?, self.clock.now().timestamp())?;
        (id != "form").then_some(id)
    }

    fn check_inbox(&self, wants_json: bool) -> Reply {
        if let (Some(thanks), false) = (&self.config.web.thank_you_url, wants_json) {
            return Reply::redirect(thanks.as_str());
        }
        let message = self.fill(&self.strings.join_check_inbox, "");
        self.answer(200, "check-your-inbox", &message, wants_json)
    }

    fn busy(&self, status: u16, wants_json: bool) -> Reply {
        let message = self.fill(&self.strings.join_busy, "");
        self.answer(status, "busy", &message, wants_json)
    }

    /// A page, or for a client that asked for JSON, `{"status": …, "message": …}`.
    fn answer(&self, status: u16, code: &str, message: &str, wants_json: bool) -> Reply {
        if wants_json {
            let body = serde_json::json!({ "status": code, "message": message }).to_string();
            return Reply::json(status, body);
        }
        Reply::page(status, self.join_page(Some(message), None))
    }

    fn join_invalid(&self) -> Reply {
        let days = CONFIRM_DAYS.to_string();
        let message =
            crate::text::fill_placeholders(&self.strings.join_invalid, &[("days", &days)]);
        Reply::page(400, self.join_page(Some(&message), None))
    }

    fn join_page(&self, message: Option<&str>, form: Option<maud::Markup>) -> String {
        self.titled(&self.strings.join_title, message.unwrap_or(""), form)
    }
}

/// The client's address: the peer's, or behind a proxy on this machine, the last address
/// of `X-Forwarded-For` (the one the proxy saw; earlier ones are the client's own claim).
fn client_ip(request: &Request) -> IpAddr {
    let peer = request.peer;
    if !peer.is_loopback() {
        return peer;
    }
    request
        .header("X-Forwarded-For")
        .and_then(|list| {
            list.rsplit(',')
                .next()
                .and_then(|ip| ip.trim().parse().ok())
        })
        .unwrap_or(peer)
}
