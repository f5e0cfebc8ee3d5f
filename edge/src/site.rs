//! Static files the client listener serves beside the WebSocket upgrade: a page at `/` for a
//! request that is not an upgrade, and other files by path. The edge has none of its own:
//! whoever starts it says what to serve (`echoctl` gives it the chat demo,
//! [`EdgeConfig::site`](crate::EdgeConfig::site)).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// A set of static files by path.
#[derive(Clone, Default)]
pub struct Site {
    files: Arc<BTreeMap<String, File>>,
}

#[derive(Clone)]
struct File {
    content_type: &'static str,
    body: Bytes,
}

impl std::fmt::Debug for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.files.keys()).finish()
    }
}

impl Site {
    /// This site with `body` served at `path` (which starts with `/`) as `content_type`.
    pub fn with(mut self, path: &str, content_type: &'static str, body: impl Into<Bytes>) -> Self {
        Arc::make_mut(&mut self.files).insert(
            path.to_owned(),
            File {
                content_type,
                body: body.into(),
            },
        );
        self
    }

    /// The paths served, in order.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    /// Whether a file is served at `path`.
    pub fn has(&self, path: &str) -> bool {
        self.files.contains_key(path)
    }

    /// The file at `path`, or 404.
    pub fn response(&self, path: &str) -> Response {
        match self.files.get(path) {
            Some(file) => (
                [(header::CONTENT_TYPE, file.content_type)],
                file.body.clone(),
            )
                .into_response(),
            None => StatusCode::NOT_FOUND.into_response(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn files_are_served_by_path_with_their_type() {
        let site = Site::default()
            .with("/", "text/html; charset=utf-8", "<p>hi</p>")
            .with("/a.js", "text/javascript; charset=utf-8", "export {}");
        assert_eq!(site.paths().collect::<Vec<_>>(), ["/", "/a.js"]);
        let r = site.response("/a.js");
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        let body = axum::body::to_bytes(r.into_body(), 1024).await.unwrap();
        assert_eq!(&body[..], b"export {}");
        assert_eq!(site.response("/b.js").status(), StatusCode::NOT_FOUND);
        assert_eq!(
            Site::default().response("/").status(),
            StatusCode::NOT_FOUND
        );
    }
}
