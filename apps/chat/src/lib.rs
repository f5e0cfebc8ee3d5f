//! The chat demo as the local edge serves it. The edge itself serves no page and runs no function
//! of its own; `echoctl dev` and `echoctl serve` give it this:
//!
//! - [`site`]: the demo's page, script and style, and the JavaScript client they import
//!   (`/echo.js` and the modules it imports, `/echo/*.js`, which browsers of any Echo
//!   application may load from the edge);
//! - [`functions`]: the five demo functions, the `members` hook and the `ticker` scheduled
//!   function, run in-process;
//! - [`ASSOCIATIONS`]: the demo's associations, the edge's starting ones.

use echo_edge::EdgeConfig;
use echo_edge::invoker::InProcess;
use echo_edge::site::Site;

/// The demo's associations: app `chat-demo`, channels boring, angry, backwards, robot and more.
pub const ASSOCIATIONS: &str = include_str!("../associations.json");

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

/// The JavaScript client: its facade and the modules it imports.
const CLIENT: [(&str, &str); 16] = [
    ("/echo.js", include_str!("../../../clients/js/echo.js")),
    (
        "/echo/checks.js",
        include_str!("../../../clients/js/echo/checks.js"),
    ),
    (
        "/echo/client.js",
        include_str!("../../../clients/js/echo/client.js"),
    ),
    (
        "/echo/e2e.js",
        include_str!("../../../clients/js/echo/e2e.js"),
    ),
    (
        "/echo/errors.js",
        include_str!("../../../clients/js/echo/errors.js"),
    ),
    (
        "/echo/link.js",
        include_str!("../../../clients/js/echo/link.js"),
    ),
    (
        "/echo/messages.js",
        include_str!("../../../clients/js/echo/messages.js"),
    ),
    (
        "/echo/mixin.js",
        include_str!("../../../clients/js/echo/mixin.js"),
    ),
    (
        "/echo/options.js",
        include_str!("../../../clients/js/echo/options.js"),
    ),
    (
        "/echo/ordering.js",
        include_str!("../../../clients/js/echo/ordering.js"),
    ),
    (
        "/echo/presence.js",
        include_str!("../../../clients/js/echo/presence.js"),
    ),
    (
        "/echo/reconnect.js",
        include_str!("../../../clients/js/echo/reconnect.js"),
    ),
    (
        "/echo/refusal.js",
        include_str!("../../../clients/js/echo/refusal.js"),
    ),
    (
        "/echo/renewal.js",
        include_str!("../../../clients/js/echo/renewal.js"),
    ),
    (
        "/echo/token.js",
        include_str!("../../../clients/js/echo/token.js"),
    ),
    (
        "/echo/util.js",
        include_str!("../../../clients/js/echo/util.js"),
    ),
];

/// The demo's page at `/`, its files (its icon too: a page without one asks for
/// `/favicon.ico` on every load), and the JavaScript client.
pub fn site() -> Site {
    let page = Site::default()
        .with(
            "/",
            "text/html; charset=utf-8",
            include_str!("../index.html"),
        )
        .with("/app.js", JAVASCRIPT, include_str!("../app.js"))
        .with(
            "/favicon.svg",
            "image/svg+xml",
            include_str!("../favicon.svg"),
        )
        .with(
            "/style.css",
            "text/css; charset=utf-8",
            include_str!("../style.css"),
        );
    CLIENT.iter().fold(page, |site, (path, body)| {
        site.with(path, JAVASCRIPT, *body)
    })
}

/// The demo functions: angry, emojify, backwards, robot, profanity.
pub fn functions() -> InProcess {
    let mut f = InProcess::default();
    f.register_sync(echo_fn_angry::NAME, echo_fn_angry::transform);
    f.register_sync(echo_fn_emojify::NAME, echo_fn_emojify::transform);
    f.register_sync(echo_fn_backwards::NAME, echo_fn_backwards::transform);
    f.register_sync(echo_fn_robot::NAME, echo_fn_robot::transform);
    f.register_sync(echo_fn_profanity::NAME, echo_fn_profanity::transform);
    f.register_hook(
        "members",
        |input| async move { echo_fn_members::decide(input) },
    );
    f.register_hook("ticker", |input| async move { echo_fn_ticker::tick(input) });
    f
}

/// `config` serving the demo: its site, and its associations to start with.
pub fn serve(config: &mut EdgeConfig) {
    config.site = site();
    config.starting_associations = ASSOCIATIONS.to_owned();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_associations_name_only_the_demo_functions() {
        let functions = functions();
        let parsed = echo_core::associations::Associations::parse(ASSOCIATIONS, &|name| {
            functions.names().iter().any(|n| n == name)
        });
        assert!(parsed.is_ok(), "{parsed:?}");
    }

    #[test]
    fn the_site_has_the_page_and_every_module_of_the_client() {
        let site = site();
        let paths: Vec<&str> = site.paths().collect();
        for page in ["/", "/app.js", "/echo.js", "/favicon.svg", "/style.css"] {
            assert!(paths.contains(&page), "{page}: {paths:?}");
        }
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../clients/js/echo");
        let mut modules: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| format!("/echo/{}", e.unwrap().file_name().to_string_lossy()))
            .collect();
        modules.sort();
        let served: Vec<&str> = paths
            .iter()
            .copied()
            .filter(|p| p.starts_with("/echo/"))
            .collect();
        assert_eq!(served, modules, "a module of the client is not served");
    }
}
