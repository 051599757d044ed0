//! The generator is the oracle (issue 22): fixture sites written here are built by the
//! real `hugo` and `jekyll` (Debian's, installed by scripts/test), then set up with nothing
//! but `digestif init` in the site's root. Every link of the week's digest must be a page
//! the generator wrote, and the posts it skipped (drafts, expired, unlisted, unpublished,
//! other sections, other languages) must not be mailed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::Site;

/// The generator's executable; the suite needs it (scripts/test installs it).
fn generator(name: &str) -> PathBuf {
    ["/usr/bin", "/usr/local/bin"]
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("`{name}` is not installed: scripts/test installs it (apt-get install {name})")
        })
}

/// Build `site` with `program` and its `args`; the built site's folder.
fn build(site: &Site, program: &str, args: &[&str], out: &str) -> PathBuf {
    let output = Command::new(generator(program))
        .current_dir(site.dir.path())
        .args(args)
        .env("HOME", site.dir.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{program} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    site.path(out)
}

fn hugo(site: &Site) -> PathBuf {
    build(
        site,
        "hugo",
        &["--quiet", "--destination", "public"],
        "public",
    )
}

fn jekyll(site: &Site) -> PathBuf {
    build(
        site,
        "jekyll",
        &["build", "--quiet", "--destination", "_site"],
        "_site",
    )
}

/// `digestif init` in the site's root, then a clean `check` (no warning but the empty
/// list's), then the week's preview: (title, link) of every post it links.
fn digest_links(site: &Site, week: &str) -> Vec<(String, String)> {
    site.run(&["init", "--from", "Blog <blog@example.org>"])
        .success();
    let check = site.run(&["check"]).success();
    let warnings: Vec<&str> = check
        .output
        .stderr
        .split(|b| *b == b'\n')
        .filter_map(|l| std::str::from_utf8(l).ok())
        .filter(|l| l.starts_with("warning:") && !l.contains("no active reader"))
        .collect();
    assert!(warnings.is_empty(), "check warned: {warnings:#?}");
    site.run(&["preview", "--week", week]).success();
    let html = std::fs::read_to_string(site.path(&format!("preview/{week}.html"))).unwrap();
    let base = base_url_of(site);
    anchors(&html)
        .into_iter()
        .filter(|(_, href)| href.starts_with(&base))
        .collect()
}

/// The `base_url` that `init` wrote.
fn base_url_of(site: &Site) -> String {
    let config = std::fs::read_to_string(site.path("digestif.toml")).unwrap();
    config
        .lines()
        .find_map(|l| l.strip_prefix("base_url = "))
        .unwrap()
        .trim_matches('"')
        .to_string()
}

/// (text, href) of every `<a href="…">text</a>` in `html`.
fn anchors(html: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find("<a href=\"") {
        rest = &rest[at + 9..];
        let href = rest[..rest.find('"').unwrap()].replace("&amp;", "&");
        let text_start = rest.find('>').unwrap() + 1;
        let text_end = rest.find("</a>").unwrap();
        let text = rest[text_start..text_end]
            .replace("&amp;", "&")
            .replace("&#39;", "'");
        found.push((text.trim().to_string(), href));
    }
    found
}

/// The file the generator wrote for `url` (relative to `base`), if any.
fn page_of(url: &str, base: &str, built: &Path) -> Option<PathBuf> {
    let relative = percent_decode(url.strip_prefix(base)?);
    let file = if relative.is_empty() || relative.ends_with('/') {
        built.join(&relative).join("index.html")
    } else {
        built.join(&relative)
    };
    // An extensionless URL is served from `<url>.html` (Jekyll's own server, GitHub Pages).
    let served = file.with_file_name(format!("{}.html", file.file_name()?.to_string_lossy()));
    [file, served].into_iter().find(|f| f.is_file())
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// The week's digest links exactly `titles`, each to a page the generator wrote.
#[track_caller]
fn assert_digest_matches_build(site: &Site, built: &Path, week: &str, titles: &[&str]) {
    let links = digest_links(site, week);
    let base = base_url_of(site);
    let linked: BTreeSet<&str> = links.iter().map(|(t, _)| t.as_str()).collect();
    let expected: BTreeSet<&str> = titles.iter().copied().collect();
    assert_eq!(linked, expected, "the posts of {week} in the digest");
    let broken: Vec<&(String, String)> = links
        .iter()
        .filter(|(_, url)| page_of(url, &base, built).is_none())
        .collect();
    assert!(
        broken.is_empty(),
        "links to pages the generator did not write: {broken:#?}\nbuilt: {:#?}",
        built_pages(built)
    );
}

fn built_pages(built: &Path) -> Vec<String> {
    let mut pages: Vec<String> = walk(built)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "html"))
        .map(|p| p.strip_prefix(built).unwrap().display().to_string())
        .collect();
    pages.sort();
    pages
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

const HUGO_SINGLE: &str = "<html><body><h1>{{ .Title }}</h1>{{ .Content }}</body></html>\n";
const HUGO_LIST: &str =
    "<html><body>{{ range .Pages }}<a href=\"{{ .Permalink }}\">{{ .Title }}</a>{{ end }}</body></html>\n";

/// A multilingual Hugo site in a config folder: a content folder per language, custom
/// `[permalinks]`, a page bundle with capitalised keys and a slug, a `.html` content file,
/// a post late on Sunday in the site's zone, and pages Hugo does not publish or list.
#[test]
fn a_multilingual_hugo_site_links_every_post_to_the_page_hugo_wrote() {
    let site = Site::empty()
        .file("layouts/_default/single.html", HUGO_SINGLE)
        .file("layouts/_default/list.html", HUGO_LIST)
        .file(
            "config/_default/hugo.toml",
            "baseURL = \"https://multi.example.org/\"\ntitle = \"Multi Blog\"\n\
             defaultContentLanguage = \"en\"\ntimeZone = \"America/New_York\"\n\
             [params]\nmainSections = [\"posts\"]\n",
        )
        .file(
            "config/_default/languages.toml",
            "[en]\ncontentDir = \"content/en\"\nlanguageCode = \"en-US\"\nweight = 1\n\
             [fr]\ncontentDir = \"content/fr\"\nlanguageCode = \"fr-FR\"\nweight = 2\n",
        )
        .file(
            "config/_default/permalinks.toml",
            "posts = \"/:year/:month/:day/:slug/\"\n",
        )
        .file(
            "content/en/posts/sunday-night.md",
            "---\ntitle: \"Sunday night: what changed\"\ndate: 2012-01-01T22:30:00-05:00\n\
             categories: [News]\n---\nLate on Sunday in New York: still week 52 there.\n",
        )
        .file(
            "content/en/posts/bundle-post/index.md",
            "---\nTitle: \"A Page Bundle, With Capitals\"\nDate: 2011-12-27T10:00:00+01:00\n\
             slug: \"Custom Slug Here\"\ncategories: [Tools]\n---\nThe bundle's text.\n",
        )
        .file("content/en/posts/bundle-post/photo.txt", "an asset\n")
        .file(
            "content/en/posts/2011/nested.md",
            "+++\ntitle = \"Nested in a year folder\"\ndate = 2011-12-28\nauthor = \"Ann\"\n+++\nNested.\n",
        )
        .file(
            "content/en/posts/html-post.html",
            "---\ntitle: An HTML content file\ndate: 2011-12-29T08:00:00Z\n---\n<p>Written in HTML.</p>\n",
        )
        .file(
            "content/en/posts/draft.md",
            "---\ntitle: A draft\ndate: 2011-12-28\ndraft: true\n---\nNot yet.\n",
        )
        .file(
            "content/en/posts/expired.md",
            "---\ntitle: An expired notice\ndate: 2011-12-28\nexpiryDate: 2011-12-31\n---\nGone.\n",
        )
        .file(
            "content/en/posts/unlisted.md",
            "---\ntitle: Unlisted\ndate: 2011-12-28\n_build:\n  list: never\n---\nHidden.\n",
        )
        .file(
            "content/en/about/index.md",
            "---\ntitle: About\ndate: 2011-12-28\n---\nA dated page outside the blog.\n",
        )
        .file(
            "content/fr/posts/bonjour.md",
            "---\ntitle: Bonjour\ndate: 2011-12-28T09:00:00+01:00\n---\nEn français.\n",
        );
    let built = hugo(&site);
    assert_digest_matches_build(
        &site,
        &built,
        "2011-W52",
        &[
            "Sunday night: what changed",
            "A Page Bundle, With Capitals",
            "Nested in a year folder",
            "An HTML content file",
        ],
    );
}

/// A Hugo site in one YAML file with `uglyURLs`, nested sections and capitals in names.
#[test]
fn a_hugo_site_with_ugly_urls_links_the_html_files_hugo_wrote() {
    let site = Site::empty()
        .file("layouts/_default/single.html", HUGO_SINGLE)
        .file("layouts/_default/list.html", HUGO_LIST)
        .file(
            "hugo.yaml",
            "baseURL: https://ugly.example.org/notes/\ntitle: Ugly Notes\nuglyURLs: true\n\
             timeZone: Europe/Paris\nlanguageCode: fr-fr\n",
        )
        .file(
            "content/blog/tech/My-First-Post.md",
            "---\ntitle: Premier billet\ndate: 2011-12-26T00:15:00+01:00\n---\nJust after midnight.\n",
        )
        .file(
            "content/blog/note.md",
            "---\ntitle: Une note\ndate: 2011-12-30\nslug: la-note\n---\nNote.\n",
        )
        .file(
            "content/blog/2011-12-31-eve.md",
            "---\ntitle: Réveillon\ndate: 2011-12-31T23:59:00+01:00\n---\nLa dernière minute.\n",
        );
    let built = hugo(&site);
    assert_digest_matches_build(
        &site,
        &built,
        "2011-W52",
        &["Premier billet", "Une note", "Réveillon"],
    );
}

/// Jekyll with `pretty` permalinks under a `baseurl`, a `defaults` scope, categories in
/// the URL (one with a space), dotted and capitalised names, an `.html` post, a date late
/// in another zone, and posts Jekyll does not publish.
#[test]
fn a_jekyll_site_links_every_post_to_the_page_jekyll_wrote() {
    let site = Site::empty()
        .file("_layouts/default.html", "<html><body>{{ content }}</body></html>\n")
        .file(
            "_config.yml",
            "title: Jekyll Veille\nurl: https://jekyll.example.org\nbaseurl: /blog\n\
             timezone: Europe/Paris\nlang: fr\npermalink: pretty\n\
             defaults:\n  - scope:\n      path: \"news\"\n      type: posts\n    values:\n      permalink: /actu/:year/:title/\n",
        )
        .file(
            "_posts/2011-12-26-homebrew-1.1.0.md",
            "---\nlayout: default\ntitle: Homebrew 1.1.0\ncategories: [Outils, Social Media]\n---\nDu texte.\n",
        )
        .file(
            "_posts/2011-12-27-Deploying-at-Heroku.markdown",
            "---\nlayout: default\ntitle: Deploying at Heroku\ndate: 2011-12-27 23:30:00 -0800\nauthors: [ann]\n---\nLate in California.\n",
        )
        .file(
            "_posts/2011-12-28-page-html.html",
            "---\nlayout: default\ntitle: Un billet en HTML\ncategory: veille\n---\n<p>Corps HTML.</p>\n",
        )
        .file(
            "_posts/2011-12-28-unpublished.md",
            "---\ntitle: Caché\npublished: false\n---\nNon.\n",
        )
        .file(
            "_drafts/a-draft.md",
            "---\ntitle: Brouillon\n---\nNon.\n",
        )
        .file(
            "news/_posts/2011-12-29-scoped.md",
            "---\nlayout: default\ntitle: Billet de la rubrique\n---\nRubrique.\n",
        )
        .file("about.md", "---\nlayout: default\ntitle: À propos\n---\nUne page.\n");
    let built = jekyll(&site);
    assert_digest_matches_build(
        &site,
        &built,
        "2011-W52",
        &[
            "Homebrew 1.1.0",
            "Deploying at Heroku",
            "Un billet en HTML",
            "Billet de la rubrique",
        ],
    );
}

/// Jekyll's default `date` style, a custom pattern with `:i_month` and `:short_year`, and a
/// post's own `permalink`.
#[test]
fn jekyll_date_style_and_custom_patterns_match_jekyll() {
    let site = Site::empty()
        .file("_layouts/default.html", "<html><body>{{ content }}</body></html>\n")
        .file(
            "_config.yml",
            "title: Dated\nurl: https://dated.example.org/\ntimezone: America/New_York\n",
        )
        .file(
            "_posts/2011-12-26-first.md",
            "---\nlayout: default\ntitle: First\ncategories: news tech\n---\nOne.\n",
        )
        .file(
            "_posts/2011-12-27-second.md",
            "---\nlayout: default\ntitle: Second\npermalink: /:short_year/:i_month/:i_day/:slug\n---\nTwo.\n",
        )
        .file(
            "_posts/2011-12-28-third.md",
            "---\nlayout: default\ntitle: Third\npermalink: /special/third-page/\n---\nThree.\n",
        );
    let built = jekyll(&site);
    assert_digest_matches_build(&site, &built, "2011-W52", &["First", "Second", "Third"]);
}

/// Hugo translations by file name (`index.fr.md`, `post.fr.md`) in page bundles, one in a
/// folder with a space: the English newsletter mails the English pages only.
#[test]
fn hugo_translations_by_file_name_stay_in_their_own_edition() {
    let site = Site::empty()
        .file("layouts/_default/single.html", HUGO_SINGLE)
        .file("layouts/_default/list.html", HUGO_LIST)
        .file(
            "hugo.toml",
            "baseURL = \"https://bilingual.example.org/\"\ntitle = \"Bilingual\"\n\
             defaultContentLanguage = \"en\"\n[languages.en]\nweight = 1\n[languages.fr]\nweight = 2\n",
        )
        .file(
            "content/post/Math Typesetting/index.md",
            "---\ntitle: Math typesetting\ndate: 2011-12-27\n---\nFormulas.\n",
        )
        .file(
            "content/post/Math Typesetting/index.fr.md",
            "---\ntitle: Formules\ndate: 2011-12-27\n---\nDes formules.\n",
        )
        .file(
            "content/post/plain.md",
            "---\ntitle: Plain post\ndate: 2011-12-28\n---\nPlain.\n",
        )
        .file(
            "content/post/plain.fr.md",
            "---\ntitle: Billet simple\ndate: 2011-12-28\n---\nSimple.\n",
        );
    let built = hugo(&site);
    assert_digest_matches_build(
        &site,
        &built,
        "2011-W52",
        &["Math typesetting", "Plain post"],
    );
}

/// A static web server over `root` (tests/site_server.py), stopped when dropped.
struct SiteServer {
    child: std::process::Child,
    port: u16,
}

impl SiteServer {
    fn start(root: &Path) -> SiteServer {
        use std::io::BufRead;
        std::fs::create_dir_all(root).unwrap();
        let mut child = Command::new(crate::smtp::python())
            .arg(crate::harness::repo_root().join("tests/site_server.py"))
            .arg("--root")
            .arg(root)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().strip_prefix("READY ").unwrap().parse().unwrap();
        SiteServer { child, port }
    }
}

impl Drop for SiteServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `check --links` asks a real web server for the week's links, as built by Hugo: a
/// missing page is an error of its post (exit 2), a redirect is shown with its chain, and
/// a server that refuses HEAD is asked with GET.
#[test]
fn check_links_reports_broken_pages_and_redirects_of_the_week() {
    let site = Site::empty();
    let server = SiteServer::start(&site.path("public"));
    let base = format!("http://127.0.0.1:{}/", server.port);
    let post = |name: &str, day: u32, link: &str| {
        format!("---\ntitle: Post {name}\ndate: 2011-12-{day}T10:00:00+01:00\n{link}---\nText of {name}.\n")
    };
    let site = site
        .file("layouts/_default/single.html", HUGO_SINGLE)
        .file("layouts/_default/list.html", HUGO_LIST)
        .file(
            "hugo.toml",
            format!("baseURL = \"{base}\"\ntitle = \"Links\"\n"),
        )
        .file("static/nohead/index.html", "<p>no HEAD here</p>\n")
        .file("content/posts/a.md", post("a", 27, ""))
        .file(
            "content/posts/b.md",
            post("b", 28, &format!("link: {base}missing/\n")),
        )
        .file(
            "content/posts/c.md",
            post("c", 29, &format!("link: {base}posts/a\n")),
        )
        .file(
            "content/posts/d.md",
            post("d", 30, &format!("link: {base}nohead/\n")),
        );
    hugo(&site);
    site.run(&["init", "--from", "Blog <blog@example.org>"])
        .success();
    let run = site.run(&["check", "--links"]);
    assert_eq!(run.code(), 2, "{}{}", run.stdout(), run.stderr());
    assert!(
        run.stderr().contains(&format!(
            "content/posts/b.md: link {base}missing/ answers 404"
        )),
        "{}",
        run.stderr()
    );
    assert!(
        run.stdout()
            .contains(&format!("note: {base}posts/a → 301 {base}posts/a/ → 200")),
        "{}",
        run.stdout()
    );
    assert!(
        run.stdout()
            .contains("error: links of 2011-W52: 6 of 7 answer"),
        "{}",
        run.stdout()
    );
}
