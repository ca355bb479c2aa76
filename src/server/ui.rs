//! The dashboard's front-end: `GET /` (and every other page URL the
//! front-end routes itself) answers `index.html`; `GET /ui/{file}` the
//! embedded modules, styles and uPlot. Public: the files hold no data; the
//! API calls they make carry the session.
//!
//! index.html (revalidated at every load) loads the files from
//! `/ui/v/{version}/{file}`, the version being a hash of them all
//! ([`assets::VERSION`]). Those answers may be cached for good, so that a
//! returning browser asks only for index.html instead of revalidating
//! twenty modules six at a time; a new build has a new version.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use osprey_dashboard::assets::{self, Asset};

use super::error::ApiError;

/// The front-end routes (no authentication).
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/ui/{file}", get(file))
        .route("/ui/v/{version}/{file}", get(versioned))
}

/// Cache for a year without revalidating: a versioned file never changes.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

fn serve(asset: Asset, headers: &HeaderMap) -> Response {
    serve_as(asset, headers, "no-cache")
}

fn serve_as(asset: Asset, headers: &HeaderMap, cache: &'static str) -> Response {
    let etag = HeaderValue::from_static(asset.etag);
    // Unversioned URLs revalidate every time (cheap with the ETag): a new
    // binary must not meet a browser holding the old modules.
    let cache = HeaderValue::from_static(cache);
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == asset.etag.as_bytes())
    {
        return (
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, etag), (header::CACHE_CONTROL, cache)],
        )
            .into_response();
    }
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            ),
            (header::ETAG, etag),
            (header::CACHE_CONTROL, cache),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        asset.bytes,
    )
        .into_response()
}

async fn index(headers: HeaderMap) -> Response {
    serve(assets::index(), &headers)
}

async fn file(Path(name): Path<String>, headers: HeaderMap) -> Result<Response, ApiError> {
    let asset = assets::get(&name)
        .ok_or_else(|| ApiError::not_found(format!("no dashboard file /ui/{name}")))?;
    Ok(serve(asset, &headers))
}

async fn versioned(
    Path((version, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let asset = assets::get(&name)
        .filter(|_| name != "index.html")
        .ok_or_else(|| ApiError::not_found(format!("no dashboard file /ui/v/{version}/{name}")))?;
    // A page of another build asking for its version gets today's file,
    // revalidated as unversioned files are: never cached under a version
    // it does not belong to.
    let cache = if version == assets::VERSION {
        IMMUTABLE
    } else {
        "no-cache"
    };
    Ok(serve_as(asset, &headers, cache))
}
