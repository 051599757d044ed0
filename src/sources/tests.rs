//! Our own format, excerpts and dates, on posts written here.

use std::path::Path;

use url::Url;

use super::excerpt::is_debris;
use super::*;
use crate::error::Diagnostic;

fn ctx() -> ParseContext {
    ParseContext::new(
        chrono_tz::Europe::Paris,
        "Divers",
        Url::parse("https://veille.example.org/blog/").unwrap(),
    )
}

fn parse(src: &str) -> Result<Post, Vec<Diagnostic>> {
    Post::parse(Path::new("p.md"), src, &ctx())
}

#[test]
fn can_parse_a_complete_post() {
    let post = parse(
        "+++\ntitle = \"Un titre\"\ndate = 2011-12-20T09:30:00+01:00\ncategory = \"Marketing\"\n\
         source = \"L'Atelier\"\nlink = \"/a\"\n+++\nPremier paragraphe.\n\nSecond.\n",
    )
    .unwrap();
    assert_eq!(post.title, "Un titre");
    assert_eq!(post.category, "Marketing");
    assert_eq!(post.link.unwrap().as_str(), "https://veille.example.org/a");
    assert_eq!(post.excerpt, "Premier paragraphe.");
    assert_eq!(post.date.to_rfc3339(), "2011-12-20T09:30:00+01:00");
}

#[test]
fn every_problem_of_a_post_is_reported_at_once_with_hints() {
    let err = parse(
        "+++\ntitle = \"t\"\ndate = \"2025-03-11\"\ncategroy = \"Marketing\"\ntags = \"x\"\n+++\n",
    )
    .unwrap_err();
    let lines: Vec<String> = err
        .iter()
        .map(|d| format!("{d} | {}", d.help.as_deref().unwrap_or("")))
        .collect();
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert!(lines[0].starts_with("p.md:3:8: invalid type: string \"2025-03-11\""));
    assert!(lines[0].ends_with("remove the quotes: TOML dates are bare, `date = 2025-03-11`"));
    assert!(lines[1].starts_with("p.md:4:1: unknown field `categroy`"));
    assert!(lines[1].ends_with("did you mean `category`?"));
    assert!(lines[2].starts_with("p.md:5:8: invalid type: string \"x\", expected a sequence"));
}

#[test]
fn html_summaries_become_markdown_and_reference_links_resolve() {
    assert_eq!(
        excerpt(Some("<p>Un <strong>résumé</strong> en HTML.</p>"), ""),
        "Un **résumé** en HTML."
    );
    assert_eq!(
        excerpt(None, "<p>Premier paragraphe.</p>\n<p>Second.</p>"),
        "Premier paragraphe."
    );
    let body =
        "Voir [le rapport][r] et [ceci].\n\nSuite.\n\n[r]: https://example.org/r\n[ceci]: /c\n";
    assert_eq!(
        excerpt(None, body),
        "Voir [le rapport][r] et [ceci].\n\n[r]: https://example.org/r\n[ceci]: /c"
    );
}

#[test]
fn shortcodes_and_liquid_are_removed_but_their_text_kept() {
    let body = "Intro {{< figure src=\"a.png\" >}} {{% note %}}gardé{{% /note %}} \
                {{ site.title }} {% include x.html %} {# commentaire #} {{ youtube(id=\"x\") }} fin {braces}.";
    let cleaned = strip_template_tags(body);
    assert!(
        !cleaned.contains("{{") && !cleaned.contains("{%") && !cleaned.contains("{#"),
        "{cleaned}"
    );
    assert!(
        cleaned.contains("gardé") && cleaned.contains("fin {braces}."),
        "{cleaned}"
    );
    assert_eq!(template_tag_count(body), 7);
}

#[test]
fn local_dates_are_in_the_newsletter_zone() {
    let post = parse("+++\ntitle = \"t\"\ndate = 2011-12-20\n+++\n").unwrap();
    assert_eq!(post.date.to_rfc3339(), "2011-12-20T00:00:00+01:00");
    assert_eq!(post.category, "Divers");
}

#[test]
fn local_time_in_dst_gap_moves_forward() {
    // Regression (#11): 02:30 in Paris's spring gap became 03:00, not 03:30.
    let post = parse("+++\ntitle = \"t\"\ndate = 2021-03-28T02:30:00\n+++\n").unwrap();
    assert_eq!(post.date.to_rfc3339(), "2021-03-28T03:30:00+02:00");
    let post = parse("+++\ntitle = \"t\"\ndate = 2021-03-28T02:00:00\n+++\n").unwrap();
    assert_eq!(post.date.to_rfc3339(), "2021-03-28T03:00:00+02:00");
}

#[test]
fn excerpts_skip_the_debris_pasted_before_the_text() {
    let cases = [
        ("CRM\n\nLes équipes de relation client changent d'outil.", "Les équipes de relation client changent d'outil."),
        ("revolution_en_islande.jpg\n\nL'Islande réécrit sa constitution en ligne.", "L'Islande réécrit sa constitution en ligne."),
        ("![](/img/a.png)\n\nUn texte qui commence enfin ici.", "Un texte qui commence enfin ici."),
        ("Alain Garnier - publié le 02.11.2011\n\nLe réseau social d'entreprise progresse.", "Le réseau social d'entreprise progresse."),
        ("Par André Gunthert - 5 novembre 2011 - 14:48 ]\n\nLa photo de presse change de statut.", "La photo de presse change de statut."),
        ("Posted on March 3, 2025 by Sam\n\nA real first paragraph, at last.", "A real first paragraph, at last."),
    ];
    for (body, expected) in cases {
        assert_eq!(excerpt(None, body), expected, "{body}");
    }
}

#[test]
fn a_paragraph_ending_with_a_colon_brings_the_next_one() {
    let body =
        "La méthode tient en trois points :\n\n- écouter, répondre, suivre.\n\nEt ensuite ?\n";
    // A list is not a paragraph: the colon line stands alone, but a following
    // paragraph joins it.
    let body2 = "Voici la question du jour :\n\nfaut-il encore un site ?\n\nSuite.";
    assert_eq!(
        excerpt(None, body2),
        "Voici la question du jour :\n\nfaut-il encore un site ?"
    );
    assert!(excerpt(None, body).starts_with("La méthode tient en trois points :"));
}

#[test]
fn real_short_paragraphs_and_numbers_are_not_debris() {
    assert!(!is_debris(
        "Le score final est de 2-1 pour Lyon, une surprise."
    ));
    assert!(!is_debris("Three seconds decide."));
    assert!(is_debris("CRM"));
    assert!(is_debris("Mis à jour le 3 mars"));
}

#[test]
fn excerpt_prefers_summary_then_more_marker_then_first_paragraph() {
    assert_eq!(excerpt(Some(" Résumé "), "Corps"), "Résumé");
    assert_eq!(
        excerpt(None, "Un.\n\nDeux.\n<!-- more -->\nTrois."),
        "Un.\n\nDeux."
    );
    assert_eq!(
        excerpt(None, "# Titre\n\nUn\nsuite.\n\nDeux."),
        "Un\nsuite."
    );
    assert_eq!(excerpt(Some("  "), ""), "");
}

#[test]
fn errors_on_unknown_key_with_line_and_known_keys() {
    let err = parse("+++\ntitle = \"t\"\ndate = 2011-12-20\ncategroy = \"x\"\n+++\n").unwrap_err();
    let msg = err[0].to_string();
    assert!(
        msg.starts_with("p.md:4:1: unknown field `categroy`, expected one of `title`"),
        "{msg}"
    );
}

#[test]
fn our_own_format_refuses_yaml_front_matter() {
    let err = parse("---\ntitle: t\n---\n").unwrap_err();
    assert!(err[0]
        .to_string()
        .contains("YAML front matter (---) is not digestif's own format"));
}

#[test]
fn errors_on_unclosed_front_matter() {
    let err = parse("+++\ntitle = \"t\"\n").unwrap_err();
    assert!(err[0]
        .to_string()
        .starts_with("p.md:1: front matter opened with +++"));
}

#[test]
fn reports_missing_title_and_bad_link_together() {
    let err = parse("+++\ndate = 2011-12-20\nlink = \"javascript:alert(1)\"\n+++\n").unwrap_err();
    assert_eq!(err.len(), 2, "{err:?}");
    assert!(err[0].message.contains("missing field `title`"));
    assert_eq!(err[1].line, Some(3));
}

#[test]
fn crlf_and_bom_are_accepted() {
    let post =
        parse("\u{feff}+++\r\ntitle = \"t\"\r\ndate = 2011-12-20\r\n+++\r\nCorps\r\n").unwrap();
    assert_eq!(post.excerpt, "Corps");
}

#[test]
fn titles_lose_newlines_and_control_characters() {
    let post =
        parse("+++\ntitle = \" a\\r\\n b\\u0007c \"\ndate = 2011-12-20\n+++\nCorps\n").unwrap();
    assert_eq!(post.title, "a b c");
}
