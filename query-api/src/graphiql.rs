//! GraphiQL, offline: the page `GET /graphql` shows a browser and the files it loads, served by
//! the binary itself at `/graphql/assets/<file>` (no CDN, no network at run time).
//!
//! The files are the minified production bundles of GraphiQL 3.9.0 (UMD) and React/ReactDOM
//! 18.3.1 from the npm registry, vendored under `query-api/assets/graphiql/` with their
//! licences, and embedded with `include_bytes!`. Their names carry the version, so they are
//! cached for a year (`immutable`); a new version is a new name.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};

/// Where the files are served (the page refers to them from here).
pub const ASSETS_PATH: &str = "/graphql/assets/{file}";

/// One vendored file: its public name, content type and bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "react-18.3.1.production.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/graphiql/react.production.min.js"),
    },
    Asset {
        name: "react-dom-18.3.1.production.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/graphiql/react-dom.production.min.js"),
    },
    Asset {
        name: "graphiql-3.9.0.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/graphiql/graphiql.min.js"),
    },
    Asset {
        name: "graphiql-3.9.0.min.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../assets/graphiql/graphiql.min.css"),
    },
];

/// The GraphiQL page: the vendored scripts, `/graphql` for queries and `/graphql/ws` for
/// subscriptions (same origin; the browser's cookies are not sent, a bearer token goes in
/// GraphiQL's headers tab).
pub fn page() -> Response {
    let mut response = Html(PAGE).into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self' 'unsafe-inline'; \
             style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
             connect-src 'self'",
        ),
    );
    response
}

/// `GET /graphql/assets/{file}`: a vendored file, or 404.
pub async fn asset(Path(file): Path<String>) -> Response {
    let Some(asset) = ASSETS.iter().find(|asset| asset.name == file) else {
        return (StatusCode::NOT_FOUND, "no such GraphiQL asset").into_response();
    };
    (
        [
            (header::CONTENT_TYPE, asset.content_type),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        asset.bytes,
    )
        .into_response()
}

const PAGE: &str = r#"<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="robots" content="noindex">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>eventshop GraphiQL</title>
    <link rel="icon" href="data:,">
    <style>
      body { height: 100%; margin: 0; width: 100%; overflow: hidden; }
      #graphiql { height: 100vh; }
    </style>
    <link rel="stylesheet" href="/graphql/assets/graphiql-3.9.0.min.css">
    <script src="/graphql/assets/react-18.3.1.production.min.js"></script>
    <script src="/graphql/assets/react-dom-18.3.1.production.min.js"></script>
    <script src="/graphql/assets/graphiql-3.9.0.min.js"></script>
  </head>
  <body>
    <div id="graphiql">Loading…</div>
    <script>
      const ws = new URL('/graphql/ws', window.location.href);
      ws.protocol = ws.protocol === 'https:' ? 'wss:' : 'ws:';
      ReactDOM.createRoot(document.getElementById('graphiql')).render(
        React.createElement(GraphiQL, {
          fetcher: GraphiQL.createFetcher({
            url: new URL('/graphql', window.location.href).toString(),
            subscriptionUrl: ws.toString(),
          }),
          defaultEditorToolsVisibility: true,
        })
      );
    </script>
  </body>
</html>
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_files_the_server_serves() {
        for source in PAGE
            .split(['"', '\''])
            .filter(|s| s.starts_with("/graphql/assets/"))
        {
            let name = source.trim_start_matches("/graphql/assets/");
            assert!(
                ASSETS.iter().any(|asset| asset.name == name),
                "{name} is not served"
            );
        }
        assert!(!PAGE.contains("http://") && !PAGE.contains("https://"));
    }

    #[tokio::test]
    async fn a_vendored_file_is_served_with_its_type_and_a_year_of_cache_and_any_other_is_404() {
        let script = asset(Path("graphiql-3.9.0.min.js".to_owned())).await;
        assert_eq!(script.status(), StatusCode::OK);
        assert_eq!(
            script.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        assert!(script.headers()[header::CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("max-age=31536000"));
        let style = asset(Path("graphiql-3.9.0.min.css".to_owned())).await;
        assert_eq!(
            style.headers()[header::CONTENT_TYPE],
            "text/css; charset=utf-8"
        );
        for missing in ["graphiql.min.js", "../Cargo.toml", "LICENSE-react"] {
            let answer = asset(Path(missing.to_owned())).await;
            assert_eq!(answer.status(), StatusCode::NOT_FOUND, "{missing}");
        }
    }

    #[test]
    fn the_page_allows_only_its_own_origin() {
        let page = page();
        let policy = page.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(policy.contains("default-src 'self'") && policy.contains("connect-src 'self'"));
    }
}
