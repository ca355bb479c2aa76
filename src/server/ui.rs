//! The dashboard's front-end: `GET /` (and every other page URL the
//! front-end routes itself) answers `index.html`; `GET /ui/{file}` the
//! embedded modules, styles and uPlot. Public: the files hold no data; the
//! API calls they make carry the session.

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
}

fn serve(asset: Asset, headers: &HeaderMap) -> Response {
    let etag = HeaderValue::from_static(asset.etag);
    // Revalidate every time (cheap with the ETag): a new binary must not
    // meet a browser holding the old modules.
    let cache = HeaderValue::from_static("no-cache");
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
