//! `bench-tool code-flows`: OpenID Connect sign-ins of an already signed-in browser in a closed loop, the
//! way an app's `st.login()` makes them (authorization request with the session cookie, then the token
//! request with client_secret_basic and PKCE), against Gatehouse or another provider (bench/oidc.sh).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, Uri};
use serde_json::json;

use super::{BoxError, Connection, percentile_ms};

pub struct CodeFlow {
    pub authorize_url: String,
    pub token_url: String,
    pub cookie: String,
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uri: String,
    pub verifier: String,
}

/// One sign-in: the authorization request with the session cookie, then the code exchanged for tokens.
async fn one_code_flow(connection: &mut Connection, flow: &CodeFlow) -> Result<bool, BoxError> {
    let authorize: Uri = flow.authorize_url.parse()?;
    let headers = [(http::header::COOKIE, HeaderValue::from_str(&flow.cookie)?)];
    let answer = connection.send(Method::GET, &authorize, &headers, Bytes::new()).await?;
    let Some(location) = answer.headers.get(http::header::LOCATION).and_then(|v| v.to_str().ok()) else {
        return Ok(false);
    };
    let query = location.split_once('?').map(|(_, q)| q).unwrap_or("");
    let Some(code) = url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "code").map(|(_, v)| v) else {
        return Ok(false);
    };
    let form = serde_urlencoded::to_string([
        ("grant_type", "authorization_code"),
        ("code", code.as_ref()),
        ("redirect_uri", flow.redirect_uri.as_str()),
        ("code_verifier", flow.verifier.as_str()),
    ])?;
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", flow.client_id, flow.client_secret));
    let token: Uri = flow.token_url.parse()?;
    let headers = [
        (http::header::AUTHORIZATION, HeaderValue::from_str(&format!("Basic {basic}"))?),
        (http::header::CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded")),
    ];
    let answer = connection.send(Method::POST, &token, &headers, Bytes::from(form)).await?;
    Ok(answer.status == StatusCode::OK && answer.body.windows(10).any(|w| w == b"\"id_token\""))
}

pub async fn code_flows(flow: Arc<CodeFlow>, seconds: u64, connections: u32) -> Result<String, BoxError> {
    let uri: Uri = flow.token_url.parse()?;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections.max(1) {
        let (flow, uri) = (flow.clone(), uri.clone());
        tasks.push(tokio::spawn(async move {
            let (mut latencies, mut errors) = (Vec::new(), 0u64);
            let mut connection = Connection::open(&uri).await?;
            while Instant::now() < deadline {
                let sent = Instant::now();
                match one_code_flow(&mut connection, &flow).await {
                    Ok(true) => latencies.push(sent.elapsed()),
                    Ok(false) => errors += 1,
                    Err(_) => {
                        errors += 1;
                        connection = Connection::open(&uri).await?;
                    }
                }
            }
            Ok::<_, BoxError>((latencies, errors))
        }));
    }
    let (mut latencies, mut errors) = (Vec::new(), 0);
    for task in tasks {
        let (l, e) = task.await??;
        latencies.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    Ok(json!({
        "flows": latencies.len(),
        "flows_per_s": (latencies.len() as f64 / elapsed).round(),
        "p50_ms": percentile_ms(&latencies, 50.0),
        "p99_ms": percentile_ms(&latencies, 99.0),
        "errors": errors,
    })
    .to_string())
}
