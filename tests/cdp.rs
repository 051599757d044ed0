//! A small driver for Debian's headless chromium over the DevTools protocol: open a page,
//! run a script in it, wait for a navigation, take a screenshot. Enough for a test to use
//! the forms as a person would, in a real browser.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::WebSocket;

const CHROMIUM: &str = "/usr/bin/chromium";

pub(crate) struct Browser {
    child: Child,
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub(crate) fn start() -> Browser {
        assert!(
            Path::new(CHROMIUM).exists(),
            "{CHROMIUM} is missing: scripts/test installs Debian's chromium"
        );
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(CHROMIUM)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--remote-debugging-port=0",
                "--window-size=800,900",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chromium");
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let mut browser_ws = None;
        for line in stderr.lines() {
            let line = line.unwrap();
            if let Some(url) = line.strip_prefix("DevTools listening on ") {
                browser_ws = Some(url.trim().to_string());
                break;
            }
        }
        let browser_ws = browser_ws.expect("chromium printed no DevTools address");
        let host = browser_ws
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .unwrap()
            .to_string();
        let page = page_socket(&host);
        let (ws, _) = tungstenite::connect(page.as_str()).expect("connect to the page");
        let mut browser = Browser {
            child,
            ws,
            next_id: 0,
            _profile: profile,
        };
        browser.call("Page.enable", json!({}));
        browser
    }

    /// Send one command and wait for its answer (events in between are skipped).
    pub(crate) fn call(&mut self, method: &str, params: Value) -> Value {
        let answer = self.send(method, params);
        assert!(answer["error"].is_null(), "{method}: {answer}");
        answer["result"].clone()
    }

    /// A script's value, or `None` when the page is between two documents (a navigation
    /// destroys the context a script runs in): for polling.
    fn peek(&mut self, script: &str) -> Option<Value> {
        let answer = self.send(
            "Runtime.evaluate",
            json!({ "expression": script, "returnByValue": true }),
        );
        let result = &answer["result"];
        (answer["error"].is_null() && result["exceptionDetails"].is_null())
            .then(|| result["result"]["value"].clone())
    }

    fn send(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let message = json!({ "id": id, "method": method, "params": params }).to_string();
        self.ws.send(tungstenite::Message::text(message)).unwrap();
        loop {
            let reply = self.ws.read().unwrap();
            let Ok(text) = reply.to_text() else { continue };
            let value: Value = serde_json::from_str(text).unwrap_or_default();
            if value["id"] == id {
                return value;
            }
        }
    }

    /// The value of a script run in the page.
    pub(crate) fn eval(&mut self, script: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({ "expression": script, "returnByValue": true, "awaitPromise": true }),
        );
        assert!(result["exceptionDetails"].is_null(), "{script}: {result}");
        result["result"]["value"].clone()
    }

    pub(crate) fn open(&mut self, url: &str) {
        self.call("Page.navigate", json!({ "url": url }));
        self.wait_for_page(url);
    }

    /// Wait until the page at an address starting with `prefix` has loaded.
    pub(crate) fn wait_for_page(&mut self, prefix: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let state = self.peek("location.href + ' ' + document.readyState");
            let state = state
                .as_ref()
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            if state.starts_with(prefix) && state.ends_with(" complete") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "still at {state}, waiting for {prefix}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The page's visible text; empty while a navigation has no page yet.
    pub(crate) fn text(&mut self) -> String {
        self.peek("document.body ? document.body.innerText : ''")
            .as_ref()
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    }

    /// A PNG of the whole page at `width` CSS pixels, in `target/browser/NAME-WIDTH.png`.
    pub(crate) fn screenshot(&mut self, name: &str, width: u32) -> PathBuf {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": 700, "deviceScaleFactor": 1, "mobile": width < 500 }),
        );
        let shot = self.call(
            "Page.captureScreenshot",
            json!({ "format": "png", "captureBeyondViewport": true }),
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        let dir = crate::harness::repo_root().join("target/browser");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}-{width}.png"));
        std::fs::write(&path, png).unwrap();
        self.call("Emulation.clearDeviceMetricsOverride", json!({}));
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The WebSocket of the browser's first page.
fn page_socket(host: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let list: Option<Value> = ureq::get(&format!("http://{host}/json/list"))
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_to_string().ok())
            .and_then(|text| serde_json::from_str(&text).ok());
        let page = list.and_then(|l| {
            l.as_array()?
                .iter()
                .find(|t| t["type"] == "page")
                .and_then(|t| t["webSocketDebuggerUrl"].as_str().map(String::from))
        });
        if let Some(page) = page {
            return page;
        }
        assert!(Instant::now() < deadline, "chromium shows no page");
        std::thread::sleep(Duration::from_millis(50));
    }
}
