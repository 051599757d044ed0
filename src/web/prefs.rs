//! The preferences page: `GET <url>preferences?token=T` shows what the reader receives
//! (topics, format, language, name, a pause) in a form; its `POST` records their choices
//! (durable before the answer) and they reach their entry the way unsubscribes do, with
//! the next fold; until then the page shows them from the store. No JavaScript; labels
//! and fieldsets for screen readers.

use chrono::{Duration, NaiveDate};
use maud::{html, Markup};

use super::form::{add_category, name_field};
use super::pages::{mask, Reply};
use super::server::Request;
use super::{Endpoint, Log};
use crate::audience::optout::{self, Optouts};
use crate::audience::subscribers::{self, Choices, Format, Status, Subscriber};
use crate::text::fill_placeholders;

/// The pauses offered, in weeks.
const PAUSES: [i64; 3] = [4, 8, 12];

impl Endpoint {
    /// `GET`: the reader's entry as a form.
    pub(super) fn preferences_page(&self, token: Option<&str>, log: Log) -> Reply {
        match self.reader_of(token) {
            Ok(Some((reader, _))) => {
                let form = self.preferences_form(&reader, token.unwrap_or_default());
                let intro = self.fill(&self.strings.prefs_intro, &mask(reader.email.as_ref()));
                Reply::page(200, self.prefs_page(&intro, Some(form)))
            }
            Ok(None) => self.invalid(),
            Err(e) => self.failure(&e, log),
        }
    }

    /// `POST`: record the choices, write them in, say so.
    pub(super) fn save_preferences(
        &self,
        request: &Request,
        token: Option<&str>,
        log: Log,
    ) -> Reply {
        let body = &request.body;
        let (reader, store) = match self.reader_of(token) {
            Ok(Some(found)) => found,
            Ok(None) => return self.invalid(),
            Err(e) => return self.failure(&e, log),
        };
        let choices = self.choices_from(body, &reader);
        let key = subscribers::address_key(&reader.email);
        if let Err(e) = store.record_choices(&key, &choices) {
            return self.failure(&e, log);
        }
        self.recorded();
        let back = html! {
            p { a href=(format!("{}?token={}", self.route("preferences"), token.unwrap_or_default())) { (self.strings.prefs_back) } }
        };
        Reply::page(200, self.prefs_page(&self.strings.prefs_saved, Some(back)))
    }

    /// The listed, active reader a token names: their entry, searched for in the list,
    /// with the choices they saved that wait to be written in; and the store, open.
    fn reader_of(
        &self,
        token: Option<&str>,
    ) -> crate::error::Result<Option<(Subscriber, Optouts)>> {
        let Some(reader) = self.reader(token)? else {
            return Ok(None);
        };
        if reader.status != Status::Active {
            return Ok(None);
        }
        let Some(mut entry) = optout::entry_of(&self.config, &self.catalog, &reader.key)? else {
            return Ok(None);
        };
        let store = Optouts::open(&self.config.state_dir, self.clock)?;
        if let Some(chosen) = store.waiting_choices(&reader.key)? {
            chosen.apply_to(&mut entry);
        }
        Ok(Some((entry, store)))
    }

    /// What the posted form chooses; a value that is not offered keeps the reader's own.
    fn choices_from(&self, body: &[u8], reader: &Subscriber) -> Choices {
        let languages = crate::templates::languages(&self.config.templates_dir);
        let mut chosen = Choices {
            name: None,
            categories: Vec::new(),
            format: Format::Html,
            language: reader.language.clone(),
            paused_until: reader.paused_until,
        };
        for (key, value) in url::form_urlencoded::parse(body) {
            let value = value.trim();
            match key.as_ref() {
                "name" => chosen.name = name_field(value),
                "categories" if self.config.categories.iter().any(|c| c == value) => {
                    add_category(&mut chosen.categories, value);
                }
                "format" if value == "text" => chosen.format = Format::Text,
                "language" if languages.iter().any(|l| l == value) => {
                    chosen.language = (value != self.config.language).then(|| value.to_string());
                }
                "pause" => chosen.paused_until = self.pause_end(value, reader.paused_until),
                _ => {}
            }
        }
        if chosen.categories.len() == self.config.categories.len() {
            // Every topic ticked: every topic, including those added later.
            chosen.categories.clear();
        }
        chosen
    }

    /// `pause` = `0` (none), a number of weeks offered, or `keep` (the pause as it is).
    fn pause_end(&self, value: &str, current: Option<NaiveDate>) -> Option<NaiveDate> {
        let today = self.clock.now().date_naive();
        match value.parse::<i64>() {
            Ok(0) => None,
            Ok(weeks) if PAUSES.contains(&weeks) => Some(today + Duration::weeks(weeks)),
            _ => current.filter(|until| *until > today),
        }
    }

    fn preferences_form(&self, reader: &Subscriber, token: &str) -> Markup {
        let s = &self.strings;
        let action = format!("{}?token={token}", self.route("preferences"));
        let ticked = |c: &String| reader.categories.as_ref().is_none_or(|cs| cs.contains(c));
        let language = reader
            .language
            .clone()
            .unwrap_or_else(|| self.config.language.clone());
        let today = self.clock.now().date_naive();
        let paused = reader.paused_until.filter(|until| *until > today);
        let leave = format!("{}?token={token}", self.path_or_root());
        html! {
            form method="post" action=(action) {
                p {
                    label for="prefs-name" { (s.join_name) } br;
                    input id="prefs-name" type="text" name="name" autocomplete="name" maxlength="100"
                        value=(reader.name.as_deref().unwrap_or(""));
                }
                @if self.config.categories.len() > 1 {
                    fieldset {
                        legend { (s.prefs_categories) }
                        @for (i, c) in self.config.categories.iter().enumerate() {
                            @let id = format!("prefs-category-{i}");
                            input id=(id) type="checkbox" name="categories" value=(c) checked[ticked(c)];
                            " " label for=(id) { (c) } br;
                        }
                    }
                }
                fieldset {
                    legend { (s.join_format) }
                    input id="prefs-html" type="radio" name="format" value="html" checked[reader.format == Format::Html];
                    " " label for="prefs-html" { (s.join_format_html) } br;
                    input id="prefs-text" type="radio" name="format" value="text" checked[reader.format == Format::Text];
                    " " label for="prefs-text" { (s.join_format_text) }
                }
                (self.language_choice(&language))
                fieldset {
                    legend { (s.prefs_pause) }
                    @if let Some(until) = paused {
                        p { (fill_placeholders(&s.prefs_paused, &[("date", &until.to_string())])) }
                        input id="prefs-pause-keep" type="radio" name="pause" value="keep" checked;
                        " " label for="prefs-pause-keep" { (until.to_string()) } br;
                    }
                    input id="prefs-pause-0" type="radio" name="pause" value="0" checked[paused.is_none()];
                    " " label for="prefs-pause-0" { (s.prefs_pause_none) } br;
                    @for weeks in PAUSES {
                        @let id = format!("prefs-pause-{weeks}");
                        input id=(id) type="radio" name="pause" value=(weeks);
                        " " label for=(id) { (fill_placeholders(&s.prefs_pause_weeks, &[("count", &weeks.to_string())])) } br;
                    }
                }
                p { button type="submit" { (s.prefs_save) } }
            }
            form method="post" action=(leave) {
                p { (s.prefs_leave) " " button type="submit" { (s.leave_button) } }
            }
        }
    }

    /// The newsletter's wordings, as radio buttons (only when there is a choice).
    fn language_choice(&self, current: &str) -> Markup {
        let languages = crate::templates::languages(&self.config.templates_dir);
        html! {
            @if languages.len() > 1 {
                fieldset {
                    legend { (self.strings.prefs_language) }
                    @for l in &languages {
                        @let id = format!("prefs-language-{l}");
                        input id=(id) type="radio" name="language" value=(l) checked[l == current];
                        " " label for=(id) lang=(l) { (language_name(l)) } br;
                    }
                }
            }
        }
    }

    fn prefs_page(&self, message: &str, form: Option<Markup>) -> String {
        self.titled(&self.strings.prefs_title, message, form)
    }
}

/// A language's name in itself, for the ones we ship; the code for others.
fn language_name(code: &str) -> &str {
    match code {
        "fr" => "Français",
        "en" => "English",
        other => other,
    }
}
