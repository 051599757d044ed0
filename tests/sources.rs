//! Real blogs in (issue 9): Zola, Hugo and Jekyll folders read as they are. The fixtures
//! are written here in each generator's documented form; every post must land in its week
//! and link to its own page in both parts of the email.

use crate::harness::Site;

/// A newsletter whose posts are a generator's `content_dir`.
fn blog(posts_dir: &str, extra: &str) -> Site {
    let config = format!(
        "[newsletter]\nname = \"Blog\"\nbase_url = \"https://blog.example.org/\"\nlanguage = \"en\"\n\
         timezone = \"Europe/Paris\"\nposts_dir = \"{posts_dir}\"\nsubscribers = \"subscribers.toml\"\n{extra}\n\
         [sender]\nfrom = \"Blog <blog@example.org>\"\nunsubscribe_mailto = \"leave@example.org\"\n\
         [smtp]\nhost = \"localhost\"\n"
    );
    Site::new().file("digestif.toml", config)
}

/// Check passes, and the week's preview links every post to `urls` in both parts.
fn assert_week_links(site: &Site, week: &str, titles_and_urls: &[(&str, &str)]) {
    let run = site.run(&["check"]);
    assert_eq!(run.code(), 0, "{}{}", run.stdout(), run.stderr());
    site.run(&["preview", "--week", week]).success();
    let html = std::fs::read_to_string(site.path(&format!("preview/{week}.html"))).unwrap();
    let text = std::fs::read_to_string(site.path(&format!("preview/{week}.txt"))).unwrap();
    for (title, url) in titles_and_urls {
        let linked = html
            .match_indices(&format!("<a href=\"{url}\""))
            .any(|(at, _)| {
                let anchor = &html[at..];
                anchor[..anchor.find("</a>").unwrap()].ends_with(&format!(">{title}"))
            });
        assert!(linked, "{title} → {url} in the HTML part");
        assert!(text.contains(title), "{title} in the text part");
        assert!(text.contains(url), "{url} in the text part:\n{text}");
    }
}

#[test]
fn a_zola_site_is_read_as_it_is() {
    let site = blog("content", "")
        .file("config.toml", "base_url = \"https://blog.example.org\"\ntitle = \"Blog\"\n[markdown]\nhighlight_code = true\n")
        .file("content/_index.md", "+++\ntitle = \"Home\"\nsort_by = \"date\"\n+++\n")
        .file("content/blog/_index.md", "+++\ntitle = \"Blog\"\nsort_by = \"date\"\ntransparent = true\n+++\n")
        .file(
            "content/blog/2011-12-27_plaintes-clients.md",
            "+++\ntitle = \"Plaintes des clients\"\ndescription = \"Les entreprises écoutent-elles ?\"\n\
             [taxonomies]\ncategories = [\"Relation client\"]\ntags = [\"CRM\"]\n[extra]\nmath = true\n+++\nCorps.\n",
        )
        .file(
            "content/blog/videos/index.md",
            "+++\ntitle = \"Vidéos courtes\"\ndate = 2011-12-28T18:00:00+01:00\nupdated = 2012-01-02\n\
             path = \"2011/12/28/videos\"\naliases = [\"/old/videos\"]\nweight = 3\n[taxonomies]\ncategories = [\"Marketing\"]\n+++\n\
             Premier paragraphe avec un [lien de référence][rapport].\n\n[rapport]: https://example.net/rapport\n",
        )
        .file("content/about.md", "+++\ntitle = \"About\"\ntemplate = \"page.html\"\n+++\nNo date: a page.\n")
        .file(
            "content/blog/2011-12-29-typo.md",
            "+++\ntitle = \"Une coquille\"\ndescripton = \"oubli\"\n+++\nTexte {{ youtube(id=\"x\") }} fin.\n",
        );
    let check = site.run(&["check"]).success();
    assert!(check.stdout().contains("ok: 3 posts"), "{}", check.stdout());
    assert!(
        check.stdout().contains("content/about.md: no date"),
        "{}",
        check.stdout()
    );
    assert!(check
        .stdout()
        .contains("content/_index.md: a Zola section index"));
    assert!(
        check.stderr().contains("warning: content/blog/2011-12-29-typo.md:3: unknown key `descripton` (Zola ignores it)\nhelp: did you mean `description`?"),
        "{}",
        check.stderr()
    );
    assert!(
        check.stderr().contains(
            "warning: content/blog/2011-12-29-typo.md:5: shortcodes or template tags are removed from the excerpt"
        ),
        "the line of the tag itself:\n{}",
        check.stderr()
    );
    assert_week_links(
        &site,
        "2011-W52",
        &[
            (
                "Plaintes des clients",
                "https://blog.example.org/blog/plaintes-clients/",
            ),
            (
                "Vidéos courtes",
                "https://blog.example.org/2011/12/28/videos/",
            ),
            ("Une coquille", "https://blog.example.org/blog/typo/"),
        ],
    );
    let html = std::fs::read_to_string(site.path("preview/2011-W52.html")).unwrap();
    assert!(
        html.contains("href=\"https://example.net/rapport\""),
        "reference link resolved"
    );
    assert!(!html.contains("youtube"), "shortcode removed");
    let weeks = site.run(&["weeks"]).success();
    assert!(
        weeks.stdout().contains("1  Relation client") && weeks.stdout().contains("1  Marketing")
    );
}

#[test]
fn a_hugo_site_with_yaml_and_toml_front_matter_is_read_as_it_is() {
    let site = blog("content", "")
        .file("hugo.toml", "baseURL = \"https://blog.example.org/\"\ntitle = \"Blog\"\n")
        .file("content/_index.md", "---\ntitle: Home\n---\n")
        .file(
            "content/posts/first-post.md",
            "---\ntitle: \"First post\"\ndate: \"2011-12-27T9:30:00+01:00\"\ncategories: [\"Relation client\"]\n\
             tags: [crm, support]\ndraft: false\ntoc: true\naliases: [\n  '/old/first/',\n]\n---\n\
             <p>An <em>HTML</em> first paragraph.</p>\n<p>More.</p>\n",
        )
        .file(
            "content/posts/second.md",
            "+++\ntitle = \"Second post\"\ndate = \"2011-12-28\"\nurl = \"/special/second/\"\ncategories = [\"Marketing\"]\n\
             summary = \"A summary {{< ref \\\"first-post\\\" >}} here.\"\n+++\nBody.\n",
        )
        .file(
            "content/posts/bundle/index.md",
            "---\ntitle: Bundle\npublishDate: 2011-12-29 10:00:00\nexpiryDate: 2030-01-01\n---\nA page bundle.\n",
        )
        .file("content/posts/draft.md", "---\ntitle: Draft\ndate: 2011-12-29\ndraft: true\n---\nNot yet.\n")
        .file("content/LICENSE.md", "No front matter: a page.\n");
    let check = site.run(&["check"]).success();
    assert!(
        check
            .stdout()
            .contains("ok: 4 posts (published: 3, drafts: 1"),
        "{}",
        check.stdout()
    );
    assert_week_links(
        &site,
        "2011-W52",
        &[
            ("First post", "https://blog.example.org/posts/first-post/"),
            ("Second post", "https://blog.example.org/special/second/"),
            ("Bundle", "https://blog.example.org/posts/bundle/"),
        ],
    );
    let text = std::fs::read_to_string(site.path("preview/2011-W52.txt")).unwrap();
    assert!(
        text.contains("An HTML first paragraph."),
        "HTML excerpt in the text part:\n{text}"
    );
    assert!(
        text.contains("A summary here.") || text.contains("A summary  here."),
        "{text}"
    );
}

#[test]
fn jekyll_posts_are_read_as_they_are() {
    let site = blog("_posts", "")
        .file("_config.yml", "title: Blog\nurl: https://blog.example.org\n")
        .file(
            "_posts/2011-12-27-welcome-to-jekyll.markdown",
            "---\nlayout: post\ntitle:  \"Welcome to Jekyll!\"\ndate:   2011-12-27 09:30:00 +0100\ncategories: veille social\n---\n\
             You'll find this post in your `_posts` directory. {% highlight ruby %}puts 1{% endhighlight %}\n",
        )
        .file(
            "_posts/2011-12-28-links.md",
            "---\ntitle: Links\ncategory: Marketing\nexcerpt: \"Read {{ site.title }} today.\"\npermalink: /links/\n---\nBody.\n",
        )
        .file("_posts/2011-12-29-unpublished.md", "---\ntitle: Hidden\npublished: false\n---\nNo.\n");
    let check = site.run(&["check"]).success();
    assert!(
        check
            .stdout()
            .contains("ok: 3 posts (published: 2, drafts: 1"),
        "{}",
        check.stdout()
    );
    assert_week_links(
        &site,
        "2011-W52",
        &[
            (
                "Welcome to Jekyll!",
                "https://blog.example.org/veille/social/2011/12/27/welcome-to-jekyll.html",
            ),
            ("Links", "https://blog.example.org/links/"),
        ],
    );
    let text = std::fs::read_to_string(site.path("preview/2011-W52.txt")).unwrap();
    assert!(!text.contains("{%") && !text.contains("{{"), "{text}");
}

#[test]
fn a_config_pattern_gives_our_own_posts_a_page_and_exclude_leaves_folders_out() {
    let site = blog("posts", "permalink = \"{year}/{month}/{slug}/\"\nexclude = [\"pages/**\"]")
        .file(
            "posts/2011-12-27-own-post.md",
            "+++\ntitle = \"Own post\"\ndate = 2011-12-27T10:00:00+01:00\ncategory = \"Notes\"\n+++\nText.\n",
        )
        .file("posts/pages/about.md", "not even front matter");
    assert_week_links(
        &site,
        "2011-W52",
        &[("Own post", "https://blog.example.org/2011/12/own-post/")],
    );
}

#[test]
fn a_bad_post_outside_the_week_warns_and_one_inside_stops() {
    let site = blog("posts", "")
        .file(
            "posts/good.md",
            "+++\ntitle = \"Good\"\ndate = 2011-12-27T10:00:00+01:00\nlink = \"https://example.net/g\"\n+++\nText.\n",
        )
        .file(
            "posts/old-typo.md",
            "+++\ntitle = \"Old\"\ndate = 2011-06-01\ncategroy = \"x\"\n+++\nText.\n",
        );
    let run = site.run(&["preview", "--week", "2011-W52"]).success();
    assert!(
        run.stderr()
            .starts_with("warning: posts/old-typo.md:4:1: unknown field `categroy`"),
        "{}",
        run.stderr()
    );
    assert!(run
        .stderr()
        .contains("(outside the week being written: not blocking)"));
    // check still lists it as a problem, and its own week cannot be written.
    assert_eq!(site.run(&["check"]).code(), 2);
    let run = site.run(&["preview", "--week", "2011-W22"]);
    assert_eq!(run.code(), 2, "{}", run.stderr());
    assert!(run.stderr().contains("posts/old-typo.md:4:1"));
}

/// A generator's config that cannot be read is said, with its file and line, instead of
/// links silently falling back to the generator's defaults.
#[test]
fn a_site_config_that_cannot_be_read_is_said_with_its_place() {
    let site = blog("content/posts", "")
        .file(
            "hugo.toml",
            "baseURL = \"https://blog.example.org/\"\n[permalinks\nposts = \"/:year/\"\n",
        )
        .file(
            "content/posts/a.md",
            "---\ntitle: A\ndate: 2011-12-27\n---\nText.\n",
        );
    let check = site.run(&["check"]).success();
    assert!(
        check
            .stderr()
            .contains("warning: $DIR/hugo.toml:2: invalid table header")
            && check
                .stderr()
                .contains("Hugo cannot read it either, and posts link to its default pages"),
        "{}",
        check.stderr()
    );
}
