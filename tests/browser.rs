//! The sample digest in a real headless Chromium (Debian's `chromium`), at 600 px and
//! 375 px, in light and dark colour schemes (issue 6). Screenshots go to
//! `target/browser/` for a person to look at.
//!
//! Run only this check: `cargo test --test integration browser`.
//!
//! Headless Chromium will not make a window narrower than 500 px, so the digest is loaded
//! in a `srcdoc` iframe of the wanted width (same origin, so the page can measure it), and
//! the measurements are written into the DOM that `--dump-dom` prints.

use std::path::{Path, PathBuf};
use std::process::Command;

use digestif::week::Week;

const CHROMIUM: &str = "/usr/bin/chromium";
const NOW: &str = "2012-01-09T12:00:00+01:00";

/// The sample week's HTML, as `digestif preview` writes it, and its post titles.
fn sample_digest(out: &Path) -> (String, Vec<String>) {
    let repo = crate::harness::repo_root();
    let mut cmd = assert_cmd::Command::cargo_bin("digestif").unwrap();
    cmd.current_dir(repo)
        .env("DIGESTIF_NOW", NOW)
        .args(["preview", "--week", "2011-W52", "--out"])
        .arg(out);
    cmd.assert().success();
    let html = std::fs::read_to_string(out.join("2011-W52.html")).unwrap();
    let site = digestif::Site::load(
        &repo.join("digestif.toml"),
        digestif::sources::feeds::Fetch::Offline,
    )
    .unwrap();
    let week: Week = "2011-W52".parse().unwrap();
    let digest = site.digest(week, NOW.parse().unwrap());
    let titles = digest
        .sections
        .iter()
        .flat_map(|s| &s.posts)
        .map(|p| p.title.clone())
        .collect();
    (html, titles)
}

const MEASURE: &str = r#"
<script>
const frame = document.getElementById('digest');
frame.addEventListener('load', () => {
  const w = frame.contentWindow, d = frame.contentDocument;
  const lum = (c) => { const m = c.match(/[\d.]+/g).map(Number); const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); }; return 0.2126 * f(m[0]) + 0.7152 * f(m[1]) + 0.0722 * f(m[2]); };
  const hidden = (el) => el.closest('.preheader') !== null;
  const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
  const cardBg = w.getComputedStyle(d.querySelector('.container')).backgroundColor;
  let minContrast = 100, faintest = '';
  let minFont = 1000, smallest = '';
  for (const el of d.body.querySelectorAll('*')) {
    if (hidden(el)) continue;
    const hasText = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim() !== '');
    if (!hasText) continue;
    const c = ratio(w.getComputedStyle(el).color, cardBg);
    if (c < minContrast) { minContrast = c; faintest = el.tagName + ': ' + el.textContent.trim().slice(0, 40); }
    const size = parseFloat(w.getComputedStyle(el).fontSize);
    if (size < minFont) { minFont = size; smallest = el.tagName + ': ' + el.textContent.trim().slice(0, 40); }
  }
  const links = [...d.querySelectorAll('a')].filter((a) => !hidden(a) && a.textContent.trim() !== '').map((a) => {
    const s = w.getComputedStyle(a), p = w.getComputedStyle(a.parentElement);
    return { text: a.textContent.trim().slice(0, 40), ok: s.textDecorationLine.includes('underline') || s.color !== p.color };
  });
  // Typography changes spaces and apostrophes, not words.
  const norm = (s) => s.replace(/[\s\u00a0\u202f]+/g, ' ').replace(/\u2019/g, "'").trim();
  const titles = TITLES.map((t) => {
    const h = [...d.querySelectorAll('h3')].find((h) => norm(h.textContent).includes(norm(t)));
    if (!h) return { title: t, visible: false };
    const r = h.getBoundingClientRect(), s = w.getComputedStyle(h);
    return { title: t, visible: r.width > 0 && r.height > 0 && r.left >= 0 && r.right <= w.innerWidth + 1 && s.visibility !== 'hidden' && s.display !== 'none' };
  });
  const container = d.querySelector('.container');
  // Punctuation that starts a line: a character whose box sits lower than the one before.
  const badStarts = [];
  const walker = d.createTreeWalker(container, NodeFilter.SHOW_TEXT);
  let prevTop = null;
  while (walker.nextNode()) {
    const n = walker.currentNode;
    if (hidden(n.parentElement)) continue;
    const t = n.textContent;
    for (let i = 0; i < t.length; i++) {
      if (/[ \t\n]/.test(t[i])) continue;
      const r = d.createRange(); r.setStart(n, i); r.setEnd(n, i + 1);
      const rects = r.getClientRects();
      if (!rects.length) continue;
      const top = rects[0].top;
      if (prevTop !== null && top > prevTop + 2 && /[;:!?»→]/.test(t[i])) {
        badStarts.push(t.slice(Math.max(0, i - 25), i + 3));
      }
      prevTop = top;
    }
  }
  const border = (sel, side) => { const el = d.querySelector(sel); return el ? lum(w.getComputedStyle(el)['border' + side + 'Color']) : null; };
  const result = {
    badStarts,
    borders: { header: border('.header', 'Bottom'), h2: border('h2', 'Bottom'), footer: border('.footer', 'Top') },
    containerWidth: container.getBoundingClientRect().width,
    viewport: w.innerWidth,
    scrollWidth: d.documentElement.scrollWidth,
    dark: w.matchMedia('(prefers-color-scheme: dark)').matches,
    minFont, smallest, links, titles, minContrast, faintest,
    background: lum(w.getComputedStyle(container).backgroundColor),
    text: lum(w.getComputedStyle(d.querySelector('.excerpt p') || d.body).color),
  };
  const pre = document.createElement('pre');
  pre.id = 'measurements';
  pre.textContent = JSON.stringify(result);
  document.body.appendChild(pre);
});
</script>"#;

fn wrapper(html: &str, width: u32, titles: &[String]) -> String {
    let escaped = html_escape::encode_double_quoted_attribute(html);
    format!(
        "<!DOCTYPE html><html><body style=\"margin:0\"><iframe id=\"digest\" style=\"width:{width}px;height:2600px;border:0\" srcdoc=\"{escaped}\"></iframe>{}</body></html>",
        MEASURE.replace("TITLES", &serde_json::to_string(titles).unwrap())
    )
}

fn chromium(
    dir: &Path,
    page: &Path,
    width: u32,
    dark: bool,
    action: &[String],
) -> std::process::Output {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: scripts/test installs Debian's chromium"
    );
    let mut cmd = Command::new(CHROMIUM);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--virtual-time-budget=5000",
    ])
    .arg(format!(
        "--user-data-dir={}",
        dir.join(format!("profile-{width}-{dark}")).display()
    ))
    .arg(format!("--window-size={},2600", width.max(500)));
    if dark {
        cmd.arg("--force-dark-mode");
    }
    cmd.args(action).arg(format!("file://{}", page.display()));
    cmd.output().expect("run chromium")
}

fn screenshots_dir() -> PathBuf {
    let dir = crate::harness::repo_root().join("target/browser");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn browser_sample_digest_reads_well_from_320_to_600_px_in_light_and_dark() {
    let tmp = tempfile::tempdir().unwrap();
    let (html, titles) = sample_digest(tmp.path());
    assert!(titles.len() >= 3);
    // The sample week has what breaks layouts: a long title with « », ? and :, an image
    // 1,200 px wide by attribute, a post in English.
    assert!(html.contains("width=\"552\"") && html.contains("lang=\"en\""));
    for width in [320u32, 375, 414, 600] {
        for dark in [false, true] {
            let page = tmp.path().join(format!("wrapper-{width}-{dark}.html"));
            std::fs::write(&page, wrapper(&html, width, &titles)).unwrap();
            let name = format!("digest-{width}-{}.png", if dark { "dark" } else { "light" });
            let shot = screenshots_dir().join(&name);
            let out = chromium(
                tmp.path(),
                &page,
                width,
                dark,
                &[format!("--screenshot={}", shot.display())],
            );
            assert!(
                shot.exists(),
                "no screenshot {name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );

            let out = chromium(tmp.path(), &page, width, dark, &["--dump-dom".to_string()]);
            let dom = String::from_utf8_lossy(&out.stdout);
            let start = dom.find("<pre id=\"measurements\">").unwrap_or_else(|| {
                panic!(
                    "no measurements at {width} px: {}",
                    String::from_utf8_lossy(&out.stderr)
                )
            });
            let json = &dom[start + 23..start + dom[start..].find("</pre>").unwrap()];
            let m: serde_json::Value =
                serde_json::from_str(&html_escape::decode_html_entities(json)).unwrap();
            let at = format!("{width} px, {}", if dark { "dark" } else { "light" });
            assert_eq!(m["viewport"], width, "{at}");
            assert!(
                m["scrollWidth"].as_u64().unwrap() <= u64::from(width),
                "{at}: horizontal scrolling ({})",
                m["scrollWidth"]
            );
            for t in m["titles"].as_array().unwrap() {
                assert!(
                    t["visible"].as_bool().unwrap(),
                    "{at}: title not visible: {}",
                    t["title"]
                );
            }
            assert!(
                m["minFont"].as_f64().unwrap() >= 14.0,
                "{at}: text smaller than 14 px: {}",
                m["smallest"]
            );
            for link in m["links"].as_array().unwrap() {
                assert!(
                    link["ok"].as_bool().unwrap(),
                    "{at}: link not distinguishable: {}",
                    link["text"]
                );
            }
            assert_eq!(m["dark"].as_bool().unwrap(), dark, "{at}: colour scheme");
            // WCAG AA for every text on the card, in both schemes.
            assert!(
                m["minContrast"].as_f64().unwrap() >= 4.5,
                "{at}: contrast {:.2} for {}",
                m["minContrast"],
                m["faintest"]
            );
            assert_eq!(
                m["badStarts"].as_array().unwrap().len(),
                0,
                "{at}: punctuation starts a line: {}",
                m["badStarts"]
            );
            if dark {
                // Every rule dark on the dark card: no light hairline left.
                for (rule, l) in m["borders"].as_object().unwrap() {
                    let l = l.as_f64().unwrap();
                    assert!(l < 0.3, "{at}: the {rule} border stays light ({l})");
                }
            }
            let (bg, fg) = (
                m["background"].as_f64().unwrap(),
                m["text"].as_f64().unwrap(),
            );
            if dark {
                assert!(
                    bg < 0.05 && fg > 0.6,
                    "{at}: expected light text on dark ({fg} on {bg})"
                );
            } else {
                assert!(
                    bg > 0.9 && fg < 0.1,
                    "{at}: expected dark text on light ({fg} on {bg})"
                );
            }
        }
    }
}

/// A client that strips `<style>` (the media queries) still gets the 600 px column and
/// readable fonts from the inline styles and attributes alone.
#[test]
fn browser_without_the_style_element_keeps_the_column_and_fonts() {
    let tmp = tempfile::tempdir().unwrap();
    let (html, titles) = sample_digest(tmp.path());
    let start = html.find("<style").unwrap();
    let end = html[start..].find("</style>").unwrap() + start + "</style>".len();
    let stripped = format!("{}{}", &html[..start], &html[end..]);
    assert!(!stripped.contains("<style"));
    for width in [800u32, 375] {
        let page = tmp.path().join(format!("nostyle-{width}.html"));
        std::fs::write(&page, wrapper(&stripped, width, &titles)).unwrap();
        let shot = screenshots_dir().join(format!("digest-nostyle-{width}.png"));
        chromium(
            tmp.path(),
            &page,
            width,
            false,
            &[format!("--screenshot={}", shot.display())],
        );
        let out = chromium(tmp.path(), &page, width, false, &["--dump-dom".to_string()]);
        let dom = String::from_utf8_lossy(&out.stdout);
        let start = dom.find("<pre id=\"measurements\">").unwrap();
        let json = &dom[start + 23..start + dom[start..].find("</pre>").unwrap()];
        let m: serde_json::Value =
            serde_json::from_str(&html_escape::decode_html_entities(json)).unwrap();
        let column = m["containerWidth"].as_f64().unwrap();
        assert!(
            column <= 600.5,
            "{width} px: the column is {column} px wide"
        );
        if width >= 600 {
            assert!(
                column >= 599.5,
                "{width} px: the column shrank to {column} px"
            );
        }
        assert!(
            m["scrollWidth"].as_u64().unwrap() <= u64::from(width),
            "{width} px: horizontal scrolling"
        );
        assert!(
            m["minFont"].as_f64().unwrap() >= 14.0,
            "{width} px: text smaller than 14 px: {}",
            m["smallest"]
        );
    }
}
