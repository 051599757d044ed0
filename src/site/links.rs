//! `check --links`: ask the web for every page the latest week's digest links to, so a
//! blogger sees a broken link before readers do. HEAD first (GET when HEAD is refused),
//! redirects followed by hand so a chain can be shown, every request bounded in time,
//! and at most [`MAX_LINKS`] links.

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

/// The most links asked in one run (a week's digest holds far fewer).
pub const MAX_LINKS: usize = 100;
/// The most redirects followed for one link.
const MAX_REDIRECTS: usize = 5;

/// One link of the digest, and the post it comes from.
#[derive(Debug, Clone)]
pub struct Link {
    pub url: Url,
    pub post: PathBuf,
}

/// What the web answered for a link.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// A 2xx, after the redirects in `chain` (status, address moved to).
    Fine { status: u16, chain: Vec<(u16, Url)> },
    /// A 4xx or 5xx, after the redirects in `chain`.
    Broken { status: u16, chain: Vec<(u16, Url)> },
    /// No answer: the connection failed, timed out, or redirected too often.
    Unreachable(String),
}

/// Ask for every link (in order, the first [`MAX_LINKS`]), each bounded by `timeout`.
pub fn check(links: &[Link], timeout: Duration) -> Vec<(Link, Answer)> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(concat!(
            "digestif/",
            env!("CARGO_PKG_VERSION"),
            " (check --links)"
        ))
        .build()
        .into();
    links
        .iter()
        .take(MAX_LINKS)
        .map(|link| (link.clone(), ask(&agent, &link.url)))
        .collect()
}

fn ask(agent: &ureq::Agent, url: &Url) -> Answer {
    let mut chain = Vec::new();
    let mut current = url.clone();
    loop {
        let (status, location) = match status_of(agent, &current) {
            Ok(answer) => answer,
            Err(why) => return Answer::Unreachable(why),
        };
        match (status, location) {
            (300..=399, Some(location)) => {
                let Ok(next) = current.join(&location) else {
                    return Answer::Unreachable(format!(
                        "a redirect to {location:?}, not an address"
                    ));
                };
                if chain.len() == MAX_REDIRECTS {
                    return Answer::Unreachable(format!("more than {MAX_REDIRECTS} redirects"));
                }
                chain.push((status, next.clone()));
                current = next;
            }
            (200..=299, _) => return Answer::Fine { status, chain },
            _ => return Answer::Broken { status, chain },
        }
    }
}

/// HEAD, or GET when the server refuses HEAD (405, 501) or fails on it: the status and the
/// `Location` header.
fn status_of(agent: &ureq::Agent, url: &Url) -> Result<(u16, Option<String>), String> {
    let location = |response: &ureq::http::Response<ureq::Body>| {
        response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    if let Ok(response) = agent.head(url.as_str()).call() {
        let status = response.status().as_u16();
        if !matches!(status, 405 | 501) {
            return Ok((status, location(&response)));
        }
    }
    let response = agent
        .get(url.as_str())
        .call()
        .map_err(|e| format!("no answer: {e}"))?;
    Ok((response.status().as_u16(), location(&response)))
}

impl Answer {
    /// "→ 301 https://…/ → 200" for a report line; empty without redirects.
    pub fn chain_text(&self) -> String {
        let chain = match self {
            Answer::Fine { chain, .. } | Answer::Broken { chain, .. } => chain,
            Answer::Unreachable(_) => return String::new(),
        };
        chain
            .iter()
            .map(|(status, to)| format!(" → {status} {to}"))
            .collect()
    }
}
