//! Doctor's pure parts: where the URL comes from, proxies, the rendering.

use super::*;

#[test]
fn the_url_comes_from_the_flag_then_the_environment_then_the_job() {
    let r = |f, e, j| resolve_base_url(f, e, j).map(|(url, source)| (url, source.as_str()));
    assert_eq!(
        r(Some("https://a"), Some("https://b"), Some("https://c")),
        Some(("https://a".into(), "--base-url"))
    );
    assert_eq!(
        r(None, Some("https://b"), Some("https://c")),
        Some(("https://b".into(), "ACRONIS_BASE_URL"))
    );
    assert_eq!(
        r(Some(" "), None, Some("https://c")),
        Some(("https://c".into(), "the job file's api.base_url"))
    );
    assert_eq!(r(None, None, None), None);
}

#[test]
fn proxies_apply_unless_loopback_or_exempt() {
    let url = |u: &str| reqwest::Url::parse(u).unwrap();
    let vars = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).into(), (*v).into()))
            .collect()
    };
    let proxy = vars(&[("HTTPS_PROXY", "http://proxy:3128")]);
    assert_eq!(
        proxy_for(&url("https://eu2-cloud.acronis.com/api/2/"), &proxy).as_deref(),
        Some("HTTPS_PROXY")
    );
    assert_eq!(proxy_for(&url("https://127.0.0.1:1/"), &proxy), None);
    assert_eq!(
        proxy_for(&url("http://localhost:1/"), &vars(&[("HTTP_PROXY", "x")])),
        None
    );
    let exempt = vars(&[("HTTPS_PROXY", "x"), ("no_proxy", "foo, .acronis.com")]);
    assert_eq!(
        proxy_for(&url("https://eu2-cloud.acronis.com/"), &exempt),
        None
    );
    let all = vars(&[("all_proxy", "x"), ("NO_PROXY", "example.com")]);
    assert_eq!(
        proxy_for(&url("https://eu2-cloud.acronis.com/"), &all).as_deref(),
        Some("all_proxy")
    );
}

fn check(id: CheckId, status: Verdict, detail: &str, hint: Option<&str>) -> Check {
    Check {
        check: id,
        status,
        title: "title".into(),
        detail: detail.into(),
        hint: hint.map(str::to_owned),
        tenant_id: None,
    }
}

#[test]
fn text_has_one_line_per_check_that_ran() {
    let report = Report {
        ok: false,
        checks: vec![
            check(
                CheckId::BaseUrl,
                Verdict::Pass,
                "https://x (from --base-url)",
                None,
            ),
            check(
                CheckId::Dns,
                Verdict::Fail,
                "x does \u{1b}[2Jnot\nresolve",
                Some("check it"),
            ),
            check(CheckId::Tcp, Verdict::Skipped, "needs DNS", None),
        ],
    };
    assert_eq!(
        render_text(&report),
        "✔ title: https://x (from --base-url)\n✘ title: x does [2Jnot resolve → check it\n"
    );
    assert_eq!(
        summary(&report),
        "1 of 2 check(s) failed; 1 not run (they need what failed, or do not apply)"
    );
    let json: serde_json::Value = serde_json::from_str(&render_json(&report)).unwrap();
    assert_eq!(json["ok"], false);
    assert_eq!(json["checks"][1]["check"], "dns");
    assert_eq!(json["checks"][1]["status"], "fail");
    assert_eq!(json["checks"][1]["hint"], "check it");
    assert_eq!(json["checks"][2]["status"], "skipped");
    assert!(json["checks"][0].get("hint").is_none());
}

#[test]
fn missing_credentials_say_which_variable() {
    let env = |id: Option<&str>, secret: Option<&str>, token: Option<&str>| Environment {
        client_id: id.map(str::to_owned),
        client_secret: secret.map(Secret::new),
        token: token.map(Secret::new),
        ..Environment::default()
    };
    assert!(matches!(
        credentials_of(&env(Some("i"), Some("s"), Some("t"))),
        Ok(Credentials::Client { .. })
    ));
    assert!(matches!(
        credentials_of(&env(None, None, Some("t"))),
        Ok(Credentials::Token(_))
    ));
    let (detail, _) = credentials_of(&env(Some("i"), None, None)).unwrap_err();
    assert!(detail.contains("ACRONIS_CLIENT_SECRET is not"), "{detail}");
    let (_, hint) = credentials_of(&env(None, None, None)).unwrap_err();
    assert!(
        hint.contains("ACRONIS_CLIENT_ID") && hint.contains("ACRONIS_TOKEN"),
        "{hint}"
    );
}
