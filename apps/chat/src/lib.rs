//! The chat demo as the local edge serves it. The edge itself serves no page and runs no function
//! of its own; `echoctl dev` and `echoctl serve` give it this:
//!
//! - [`site`]: the demo's page, script and style, and the JavaScript client they import
//!   (`/echo.js`, which browsers of any Echo application may load from the edge);
//! - [`functions`]: the five demo functions, run in-process;
//! - [`ASSOCIATIONS`]: the demo's associations, the edge's starting ones.

use echo_edge::EdgeConfig;
use echo_edge::invoker::InProcess;
use echo_edge::site::Site;

/// The demo's associations: app `chat-demo`, channels boring, angry, backwards, robot and more.
pub const ASSOCIATIONS: &str = include_str!("../associations.json");

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

/// The demo's page at `/`, its files, and the JavaScript client.
pub fn site() -> Site {
    Site::default()
        .with(
            "/",
            "text/html; charset=utf-8",
            include_str!("../index.html"),
        )
        .with("/app.js", JAVASCRIPT, include_str!("../app.js"))
        .with(
            "/style.css",
            "text/css; charset=utf-8",
            include_str!("../style.css"),
        )
        .with(
            "/echo.js",
            JAVASCRIPT,
            include_str!("../../../clients/js/echo.js"),
        )
}

/// The demo functions: angry, emojify, backwards, robot, profanity.
pub fn functions() -> InProcess {
    let mut f = InProcess::default();
    f.register_sync(echo_fn_angry::NAME, echo_fn_angry::transform);
    f.register_sync(echo_fn_emojify::NAME, echo_fn_emojify::transform);
    f.register_sync(echo_fn_backwards::NAME, echo_fn_backwards::transform);
    f.register_sync(echo_fn_robot::NAME, echo_fn_robot::transform);
    f.register_sync(echo_fn_profanity::NAME, echo_fn_profanity::transform);
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
    fn the_site_has_the_page_and_the_client() {
        let site = site();
        let paths: Vec<&str> = site.paths().collect();
        assert_eq!(paths, ["/", "/app.js", "/echo.js", "/style.css"]);
    }
}
