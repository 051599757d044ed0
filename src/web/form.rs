//! The subscribe form: its HTML (the same for `digestif subscribe-form`, pasted into a
//! blog's template, and for the page `serve` hosts) and what comes back from it.
//!
//! No JavaScript, and readable with its `<style>` stripped: labels for every field,
//! fieldsets with legends for the choices, and a honeypot field hidden with the `hidden`
//! attribute (not CSS), which people never fill and form-filling programs often do.

use std::collections::HashSet;

use lettre::Address;
use maud::{html, Markup};

use crate::audience::token::Secret;
use crate::config::Config;
use crate::templates::Strings;

/// The honeypot field's name: plausible to a program, hidden from people.
const HONEYPOT: &str = "website";

/// The form, posting to `action`; `stamp`: the signed time the page was served (only on
/// the page `serve` hosts).
pub(crate) fn markup(config: &Config, s: &Strings, action: &str, stamp: Option<&str>) -> Markup {
    html! {
        form class="digestif-subscribe" method="post" action=(action) accept-charset="utf-8" {
            p {
                label for="digestif-email" { (s.join_email) }
                br;
                input id="digestif-email" type="email" name="email" required autocomplete="email" size="30";
            }
            p {
                label for="digestif-name" { (s.join_name) }
                br;
                input id="digestif-name" type="text" name="name" autocomplete="name" size="30" maxlength="100";
            }
            @if config.categories.len() > 1 {
                fieldset {
                    legend { (s.join_categories) }
                    @for (i, category) in config.categories.iter().enumerate() {
                        @let id = format!("digestif-category-{i}");
                        input id=(id) type="checkbox" name="categories" value=(category);
                        " "
                        label for=(id) { (category) }
                        br;
                    }
                }
            }
            fieldset {
                legend { (s.join_format) }
                input id="digestif-format-html" type="radio" name="format" value="html" checked;
                " "
                label for="digestif-format-html" { (s.join_format_html) }
                br;
                input id="digestif-format-text" type="radio" name="format" value="text";
                " "
                label for="digestif-format-text" { (s.join_format_text) }
            }
            p hidden {
                label { "Leave this field empty " input type="text" name=(HONEYPOT) tabindex="-1" autocomplete="off"; }
            }
            @if let Some(stamp) = stamp {
                input type="hidden" name="t" value=(stamp);
            }
            p { button type="submit" { (s.join_button) } }
        }
    }
}

/// A name as a form sends it: whitespace normalized, at most 100 characters, none if empty.
pub(super) fn name_field(value: &str) -> Option<String> {
    let name = crate::text::normalize_whitespace(value);
    (!name.is_empty()).then(|| name.chars().take(100).collect())
}

/// Add a ticked topic once, however often the form repeats it.
pub(super) fn add_category(categories: &mut Vec<String>, value: &str) {
    if !categories.iter().any(|c| c == value) {
        categories.push(value.to_string());
    }
}

/// A posted form, its values checked.
#[derive(Debug, Default)]
pub(super) struct Form {
    /// `None`: missing or not an address.
    pub email: Option<Address>,
    pub name: Option<String>,
    /// Only configured categories; empty means every one.
    pub categories: Vec<String>,
    /// `Some("text")` or `None` (HTML).
    pub format: Option<String>,
    honeypot: bool,
    stamp: Option<String>,
}

impl Form {
    pub(super) fn parse(body: &[u8], known: &[String]) -> Form {
        let known: HashSet<&str> = known.iter().map(String::as_str).collect();
        let mut form = Form::default();
        for (key, value) in url::form_urlencoded::parse(body) {
            let value = value.trim();
            match key.as_ref() {
                "email" => form.email = value.parse().ok().filter(|_| value.len() <= 254),
                "name" => form.name = name_field(value),
                "categories" if known.contains(value) => add_category(&mut form.categories, value),
                "format" => form.format = (value == "text").then(|| "text".to_string()),
                HONEYPOT => form.honeypot |= !value.is_empty(),
                "t" => form.stamp = Some(value.to_string()),
                _ => {}
            }
        }
        form
    }

    /// Filled by a program: the honeypot has a value, or the page `serve` hosted came
    /// back sooner than `min_fill_seconds` after it was served (or with a forged time).
    pub(super) fn is_a_program(&self, secret: &Secret, now: i64, min_fill_seconds: u64) -> bool {
        if self.honeypot {
            return true;
        }
        let Some(stamp) = &self.stamp else {
            // A form pasted into a static page cannot carry a time of ours.
            return false;
        };
        let served = match secret.verify_confirm(stamp, i64::MIN) {
            Some(id) if id == "form" => stamp.split('.').nth(1).and_then(|t| t.parse::<i64>().ok()),
            _ => None,
        };
        served.is_none_or(|t| now - t < min_fill_seconds as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Secret {
        Secret::new(b"0123456789abcdef-test".to_vec()).unwrap()
    }

    #[test]
    fn values_are_checked_and_unknown_categories_dropped() {
        let known = vec!["Marketing".to_string(), "Relation client".to_string()];
        let form = Form::parse(
            b"email=+ada%40example.org+&name=Ada++L&categories=Marketing&categories=Sport&categories=Marketing&format=text",
            &known,
        );
        assert_eq!(form.email.unwrap().to_string(), "ada@example.org");
        assert_eq!(form.name.as_deref(), Some("Ada L"));
        assert_eq!(form.categories, vec!["Marketing"]);
        assert_eq!(form.format.as_deref(), Some("text"));
        assert!(Form::parse(b"email=not-an-address", &known).email.is_none());
    }

    #[test]
    fn programs_are_told_by_the_honeypot_and_the_fill_time() {
        let s = secret();
        let person = Form::parse(b"email=a%40b.org", &[]);
        assert!(
            !person.is_a_program(&s, 100, 2),
            "a pasted form carries no time"
        );
        let bot = Form::parse(b"email=a%40b.org&website=http%3A%2F%2Fspam", &[]);
        assert!(bot.is_a_program(&s, 100, 2));
        let stamp = s.confirm_token("form", 100);
        let hosted = |now| {
            let body = format!("email=a%40b.org&t={stamp}");
            Form::parse(body.as_bytes(), &[]).is_a_program(&s, now, 2)
        };
        assert!(hosted(101), "back after one second");
        assert!(!hosted(103));
        let forged = Form::parse(b"email=a%40b.org&t=form.1.00", &[]);
        assert!(forged.is_a_program(&s, 1000, 2));
    }
}
