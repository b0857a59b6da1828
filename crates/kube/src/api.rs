//! Reading the Kubernetes API: credentials as kubectl finds them, paged lists, bounded
//! responses, and failures (unreachable, 401, 403, 404, 410) as gaps that say what to do.

use std::path::{Path, PathBuf};
use std::time::Duration;

use http::StatusCode;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::client::Body;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::params::ListParams;
use kube::core::Request;
use kube::Resource;
use nodedoc_model::{Gap, Gaps, KubeListing, KubeState, SourceState, SourceStatus};
use tokio::time::Instant;

use crate::wire::{decode_list, Decoded, WireList};
use crate::{KubeError, API_SOURCE};

/// How the API is read.
#[derive(Clone, Debug)]
pub struct ApiOptions {
    /// A kubeconfig file; `None`: `$KUBECONFIG`, `~/.kube/config`, then the pod's service
    /// account (in-cluster), as kubectl and client-go look.
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context; `None`: its current context.
    pub context: Option<String>,
    /// This node's name in Kubernetes: only its pods are listed.
    pub node_name: String,
    /// Every request of the reading must be answered within this long of its start.
    pub timeout: Duration,
    /// Objects asked per page (`limit`).
    pub page_size: u32,
    /// At most this many objects of one kind are kept; the listing is then incomplete.
    pub max_objects: u64,
    /// A response larger than this is abandoned.
    pub max_response_bytes: usize,
    /// List Deployments and ReplicaSets of every namespace (for `replicaset-history-leak`).
    pub workloads: bool,
    /// List this node's pods (for `pod-stuck-terminating`).
    pub pods: bool,
    /// Read kube-apiserver's `/metrics` (its memory; needs `get` on the non-resource URL).
    pub metrics: bool,
}

impl Default for ApiOptions {
    fn default() -> Self {
        ApiOptions {
            kubeconfig: None,
            context: None,
            node_name: String::new(),
            timeout: Duration::from_secs(60),
            page_size: 500,
            max_objects: 250_000,
            max_response_bytes: 64 << 20,
            workloads: true,
            pods: true,
            metrics: true,
        }
    }
}

/// A request the API server refused or never answered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {}", self.reason_text())]
pub struct ApiFailure {
    /// What was asked (`list ReplicaSets`, `GET /metrics`).
    pub what: String,
    /// The HTTP status, when there was a response.
    pub code: Option<u16>,
    /// The `Status` object's `reason` (`Forbidden`, `NotFound`, `Expired`), or what failed.
    pub reason: String,
    /// The `Status` object's `message`, or the transport's error.
    pub message: String,
}

impl ApiFailure {
    fn transport(what: &str, message: impl Into<String>) -> ApiFailure {
        ApiFailure {
            what: what.to_string(),
            code: None,
            reason: "Unreachable".to_string(),
            message: message.into(),
        }
    }

    /// True for a 403: RBAC does not allow it.
    pub fn forbidden(&self) -> bool {
        self.code == Some(403)
    }

    /// True for a 404.
    pub fn not_found(&self) -> bool {
        self.code == Some(404)
    }

    /// One line on what happened and, where it helps, what to do.
    pub fn reason_text(&self) -> String {
        match self.code {
            Some(403) => format!(
                "forbidden by RBAC ({}): grant the identity nodedoc uses `get`/`list` on it",
                self.message
            ),
            Some(401) => format!(
                "unauthorized ({}): the credentials were refused",
                self.message
            ),
            Some(404) => format!("not found ({})", self.message),
            Some(410) => format!("expired ({})", self.message),
            Some(code) => format!("HTTP {code} {} ({})", self.reason, self.message),
            None => format!("{}: {}", self.reason.to_lowercase(), self.message),
        }
    }
}

/// Where the credentials came from, or why there are none.
pub enum Credentials {
    /// A configuration, and where it was found.
    Found {
        /// The client configuration.
        config: Box<kube::Config>,
        /// `kubeconfig /root/.kube/config (context prod)`, `in-cluster service account`.
        from: String,
    },
    /// No kubeconfig and no in-cluster service account: not an error.
    Absent(String),
}

/// Finds credentials as kubectl does: `kubeconfig` if given, else `$KUBECONFIG`, else
/// `~/.kube/config`, else the pod's service account.
pub async fn credentials(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
) -> Result<Credentials, KubeError> {
    let options = KubeConfigOptions {
        context: context.map(str::to_string),
        ..KubeConfigOptions::default()
    };
    let client_error = |e: &dyn std::fmt::Display| KubeError::Client(e.to_string());
    if let Some(path) = kubeconfig {
        // A regular file only (not a FIFO or a device someone pointed us at).
        nodedoc_model::hostfile::open_regular(path).map_err(|e| client_error(&e))?;
        let parsed = Kubeconfig::read_from(path).map_err(|e| client_error(&e))?;
        let config = kube::Config::from_custom_kubeconfig(parsed, &options)
            .await
            .map_err(|e| client_error(&e))?;
        return Ok(Credentials::Found {
            config: Box::new(config),
            from: describe_kubeconfig(&path.display().to_string(), context),
        });
    }
    let env = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty());
    let home = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".kube/config"));
    let default_file = home.filter(|p| p.is_file());
    if env.is_some() || default_file.is_some() {
        let from = match (&env, &default_file) {
            (Some(v), _) => format!("$KUBECONFIG={}", v.to_string_lossy()),
            (None, Some(p)) => p.display().to_string(),
            (None, None) => unreachable!(),
        };
        let config = kube::Config::from_kubeconfig(&options)
            .await
            .map_err(|e| client_error(&e))?;
        return Ok(Credentials::Found {
            config: Box::new(config),
            from: describe_kubeconfig(&from, context),
        });
    }
    if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
        let config = kube::Config::incluster().map_err(|e| client_error(&e))?;
        return Ok(Credentials::Found {
            config: Box::new(config),
            from: "in-cluster service account".to_string(),
        });
    }
    Ok(Credentials::Absent(
        "no kubeconfig (--kubeconfig, $KUBECONFIG, ~/.kube/config) and not in a pod (no \
         KUBERNETES_SERVICE_HOST): the Kubernetes API was not read"
            .to_string(),
    ))
}

fn describe_kubeconfig(file: &str, context: Option<&str>) -> String {
    match context {
        Some(c) => format!("kubeconfig {file} (context {c})"),
        None => format!("kubeconfig {file}"),
    }
}

/// A connection to one API server, with the bounds of its requests.
pub struct Session {
    client: kube::Client,
    /// `https://HOST:PORT`, for messages and origins.
    pub server: String,
    deadline: Option<Instant>,
    request_timeout: Duration,
    max_response_bytes: usize,
}

impl Session {
    /// A client for `config`: requests time out after `request_timeout`; with `deadline`,
    /// none is sent or waited for past it.
    pub fn new(
        mut config: kube::Config,
        request_timeout: Duration,
        deadline: Option<Instant>,
        max_response_bytes: usize,
    ) -> Result<Session, KubeError> {
        config.connect_timeout = Some(request_timeout.min(Duration::from_secs(10)));
        config.read_timeout = Some(request_timeout);
        config.write_timeout = Some(request_timeout);
        // The timeout counts from each request, not from when a pooled connection went idle.
        config.reset_reader_on_write = true;
        let server = config
            .cluster_url
            .to_string()
            .trim_end_matches('/')
            .to_string();
        let client =
            kube::Client::try_from(config).map_err(|e| KubeError::Client(e.to_string()))?;
        Ok(Session {
            client,
            server,
            deadline,
            request_timeout,
            max_response_bytes,
        })
    }

    /// Sends `request` and returns the body of a 2xx answer; any other answer is an
    /// [`ApiFailure`] read from the `Status` object the API server sends with it.
    pub async fn send(
        &self,
        request: http::Request<Vec<u8>>,
        what: &str,
    ) -> Result<Vec<u8>, ApiFailure> {
        let started = Instant::now();
        let deadline = match self.deadline {
            Some(d) => d.min(started + self.request_timeout),
            None => started + self.request_timeout,
        };
        let work = async {
            let response = self
                .client
                .send(request.map(Body::from))
                .await
                .map_err(|e| ApiFailure::transport(what, e.to_string()))?;
            let status = response.status();
            // An error's Status object is small; a success may be a page of 500 objects.
            let cap = if status.is_success() {
                self.max_response_bytes
            } else {
                1 << 20
            };
            let body = read_body(response.into_body(), cap)
                .await
                .map_err(|e| ApiFailure::transport(what, e))?;
            if status.is_success() {
                Ok(body)
            } else {
                Err(failure_of(what, status, &body))
            }
        };
        match tokio::time::timeout_at(deadline, work).await {
            Ok(result) => result,
            Err(_) => Err(ApiFailure {
                what: what.to_string(),
                code: None,
                reason: "Timeout".to_string(),
                message: format!(
                    "no answer within {:.1}s",
                    deadline.saturating_duration_since(started).as_secs_f64()
                ),
            }),
        }
    }

    /// `GET` of one object.
    pub(crate) async fn get_object(
        &self,
        url_path: &str,
        name: &str,
        what: &str,
    ) -> Result<crate::wire::WireObject, ApiFailure> {
        let request = Request::new(url_path)
            .get(name, &Default::default())
            .map_err(|e| ApiFailure::transport(what, e.to_string()))?;
        let body = self.send(request, what).await?;
        serde_json::from_slice(&body).map_err(|e| ApiFailure {
            what: what.to_string(),
            code: None,
            reason: "BadResponse".to_string(),
            message: format!("the answer is not an object: {e}"),
        })
    }

    /// The client, for requests this module has no helper for.
    pub fn client(&self) -> &kube::Client {
        &self.client
    }
}

/// Reads a response body, abandoning it past `cap` bytes.
async fn read_body(body: Body, cap: usize) -> Result<Vec<u8>, String> {
    use http_body_util::BodyExt;
    match http_body_util::Limited::new(body, cap).collect().await {
        Ok(collected) => Ok(collected.to_bytes().to_vec()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(format!(
            "the answer is larger than {} (abandoned)",
            nodedoc_model::hostfile::format_bytes(cap as u64)
        )),
        Err(e) => Err(format!("reading the answer failed: {e}")),
    }
}

/// The failure a non-2xx answer describes: its `Status` object, or the status line.
fn failure_of(what: &str, status: StatusCode, body: &[u8]) -> ApiFailure {
    #[derive(serde::Deserialize)]
    struct WireStatus {
        #[serde(default)]
        reason: String,
        #[serde(default)]
        message: String,
    }
    let parsed = serde_json::from_slice::<WireStatus>(body).ok();
    let (reason, message) = match parsed {
        Some(s) => (s.reason, s.message),
        None => (
            status.canonical_reason().unwrap_or("").to_string(),
            String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
        ),
    };
    ApiFailure {
        what: what.to_string(),
        code: Some(status.as_u16()),
        reason,
        message,
    }
}

/// One kind, listed in full (or as far as the bounds allow).
pub(crate) struct Listed {
    pub decoded: Decoded,
    pub listing: KubeListing,
    /// Why the list stopped early, if it did.
    pub failure: Option<ApiFailure>,
    /// Restarted once after the continue token expired (410).
    pub restarted: bool,
}

/// Lists `kind` at `url_path` page by page (`limit`, `continue`), keeping at most
/// `max_objects`. An expired continue token (410 Expired: the list took longer than etcd
/// keeps the revision) restarts the list once from the beginning.
pub(crate) async fn list(
    session: &Session,
    url_path: &str,
    field_selector: Option<&str>,
    kind: &str,
    scope: &str,
    page_size: u32,
    max_objects: u64,
) -> Listed {
    let what = format!("list {kind}s ({scope})");
    let mut decoded = Decoded::default();
    let mut listing = KubeListing {
        kind: kind.to_string(),
        origin: format!("api:{}", session.server),
        scope: scope.to_string(),
        ..KubeListing::default()
    };
    let mut continue_token: Option<String> = None;
    let mut restarted = false;
    let count = |d: &Decoded| (d.pods.len() + d.deployments.len() + d.replica_sets.len()) as u64;
    let failed = |reason: &str, message: String| ApiFailure {
        what: what.clone(),
        code: None,
        reason: reason.to_string(),
        message,
    };
    // Each page until the last, the cap, or a failure (which ends the list as it stands).
    let failure: Option<ApiFailure> = loop {
        let left = max_objects.saturating_sub(count(&decoded));
        let params = ListParams {
            field_selector: field_selector.map(str::to_string),
            limit: Some(page_size.min(left.clamp(1, u32::MAX as u64) as u32)),
            continue_token: continue_token.clone(),
            ..ListParams::default()
        };
        let request = match Request::new(url_path).list(&params) {
            Ok(r) => r,
            Err(e) => break Some(failed("BadRequest", e.to_string())),
        };
        let body = match session.send(request, &what).await {
            Ok(body) => body,
            Err(failure) if failure.code == Some(410) && continue_token.is_some() && !restarted => {
                restarted = true;
                decoded = Decoded::default();
                listing.pages = 0;
                listing.bytes = 0;
                continue_token = None;
                continue;
            }
            Err(failure) => break Some(failure),
        };
        listing.pages += 1;
        listing.bytes += body.len() as u64;
        let page: WireList = match serde_json::from_slice(&body) {
            Ok(page) => page,
            Err(e) => {
                break Some(failed(
                    "BadResponse",
                    format!("page {} is not a list: {e}", listing.pages),
                ))
            }
        };
        let next = page
            .metadata
            .continue_token
            .clone()
            .filter(|t| !t.is_empty());
        let remaining = page.metadata.remaining_item_count;
        decode_list(page, &mut decoded);
        match next {
            Some(token) if count(&decoded) < max_objects => continue_token = Some(token),
            Some(_) => {
                let more = remaining.map_or("more".to_string(), |n| format!("{n} more"));
                break Some(failed(
                    "Capped",
                    format!("stopped at {max_objects} objects; the API server has {more}"),
                ));
            }
            None => break None,
        }
    };
    listing.items = count(&decoded);
    listing.complete = failure.is_none();
    Listed {
        decoded,
        listing,
        failure,
        restarted,
    }
}

/// What one reading of the API gave.
pub struct ApiReading {
    /// The objects, when the API could be reached at all.
    pub state: Option<KubeState>,
    /// The `kubernetes` source's status.
    pub status: SourceStatus,
    /// What could not be read.
    pub gaps: Vec<Gap>,
}

/// Reads the API: this node's pods, every Deployment and ReplicaSet, the API server's memory.
pub fn read(options: &ApiOptions) -> ApiReading {
    match crate::block_on(read_async(options)) {
        Ok(reading) => reading,
        Err(e) => ApiReading {
            state: None,
            status: SourceStatus {
                source: API_SOURCE.to_string(),
                state: SourceState::Failed,
                detail: e.to_string(),
            },
            gaps: Vec::new(),
        },
    }
}

async fn read_async(options: &ApiOptions) -> ApiReading {
    let status = |state, detail: String| SourceStatus {
        source: API_SOURCE.to_string(),
        state,
        detail,
    };
    let failed = |detail: String| ApiReading {
        state: None,
        status: status(SourceState::Failed, detail),
        gaps: Vec::new(),
    };
    let (config, from) =
        match credentials(options.kubeconfig.as_deref(), options.context.as_deref()).await {
            Ok(Credentials::Found { config, from }) => (config, from),
            Ok(Credentials::Absent(why)) => {
                return ApiReading {
                    state: None,
                    status: status(SourceState::Absent, why),
                    gaps: Vec::new(),
                }
            }
            Err(e) => return failed(e.to_string()),
        };
    let deadline = Instant::now() + options.timeout;
    let session = match Session::new(
        *config,
        options.timeout,
        Some(deadline),
        options.max_response_bytes,
    ) {
        Ok(s) => s,
        Err(e) => return failed(format!("{from}: {e}")),
    };
    let origin = format!("api:{}", session.server);
    let mut state = KubeState {
        origins: vec![origin.clone()],
        node_name: Some(options.node_name.clone()).filter(|n| !n.is_empty()),
        read_at_unix: crate::now_unix(),
        ..KubeState::default()
    };
    let mut gaps = Gaps::new();
    let mut done: Vec<String> = Vec::new();
    let mut failures: Vec<ApiFailure> = Vec::new();
    let mut unreachable = false;

    let mut lists: Vec<(String, Option<String>, &str, String)> = Vec::new();
    if options.pods && !options.node_name.is_empty() {
        let selector = format!("spec.nodeName={}", options.node_name);
        lists.push((
            Pod::url_path(&(), None),
            Some(selector.clone()),
            "Pod",
            selector,
        ));
    }
    if options.workloads {
        for (path, kind) in [
            (Deployment::url_path(&(), None), "Deployment"),
            (ReplicaSet::url_path(&(), None), "ReplicaSet"),
        ] {
            lists.push((path, None, kind, "all namespaces".to_string()));
        }
    }
    for (path, selector, kind, scope) in &lists {
        if unreachable {
            break;
        }
        let listed = list(
            &session,
            path,
            selector.as_deref(),
            kind,
            scope,
            options.page_size,
            options.max_objects,
        )
        .await;
        crate::record_decode_gaps(&mut gaps, API_SOURCE, &origin, &listed.decoded);
        if listed.restarted {
            gaps.record(
                API_SOURCE,
                &format!("the {kind} list"),
                "continue token expired (410): listed again from the start",
                origin.clone(),
            );
        }
        if listed.listing.pages > 0 || listed.failure.is_none() {
            done.push(format!(
                "{} {kind}{} ({scope}, {} page{})",
                listed.listing.items,
                if listed.listing.items == 1 { "" } else { "s" },
                listed.listing.pages,
                if listed.listing.pages == 1 { "" } else { "s" }
            ));
        }
        if let Some(failure) = &listed.failure {
            gaps.record(
                API_SOURCE,
                &format!("{kind}s ({scope})"),
                failure.reason_text(),
                origin.clone(),
            );
            unreachable |= failure.code.is_none() && failure.reason != "Capped";
            failures.push(failure.clone());
        }
        if *kind == "Pod" && listed.failure.is_none() && listed.listing.items == 0 {
            // Zero pods: a node registered under another name is the usual reason.
            let nodes = k8s_openapi::api::core::v1::Node::url_path(&(), None);
            match session
                .get_object(&nodes, &options.node_name, "get node")
                .await
            {
                Err(f) if f.not_found() => gaps.record(
                    API_SOURCE,
                    "this node's pods",
                    format!(
                        "no node named {:?} in the cluster: pass --node-name with the name `kubectl get nodes` shows",
                        options.node_name
                    ),
                    origin.clone(),
                ),
                _ => {}
            }
        }
        state.listings.push(listed.listing);
        crate::merge(&mut state, listed.decoded);
    }
    if options.metrics && !unreachable {
        let what = "GET /metrics";
        match http::Request::get("/metrics").body(Vec::new()) {
            Ok(request) => match session.send(request, what).await {
                Ok(body) => {
                    let text = String::from_utf8_lossy(&body);
                    let metrics = crate::metrics::parse(&format!("{origin}/metrics"), &text);
                    if metrics.resident_memory_bytes.is_some() {
                        done.push("apiserver metrics".to_string());
                    }
                    state.apiserver = Some(metrics);
                }
                Err(failure) => {
                    gaps.record(
                        API_SOURCE,
                        "kube-apiserver /metrics (its memory)",
                        failure.reason_text(),
                        origin.clone(),
                    );
                    // Optional: refused or not served, it does not make the source partial.
                    if !failure.forbidden() && !failure.not_found() {
                        failures.push(failure);
                    }
                }
            },
            Err(e) => gaps.record(
                API_SOURCE,
                "kube-apiserver /metrics",
                e.to_string(),
                origin.clone(),
            ),
        }
    }
    let listed_any = state.listings.iter().any(|l| l.pages > 0);
    let source_state = match (failures.is_empty(), listed_any) {
        (true, _) => SourceState::Collected,
        (false, true) => SourceState::Partial,
        (false, false) => SourceState::Failed,
    };
    let mut detail = format!("{} via {from}", session.server);
    if !done.is_empty() {
        detail.push_str(": ");
        detail.push_str(&done.join(", "));
    }
    if let Some(first) = failures.first() {
        detail.push_str(&format!("; {first}"));
    }
    ApiReading {
        state: listed_any.then_some(state),
        status: status(source_state, detail),
        gaps: gaps.into_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_body_becomes_a_failure_that_says_what_to_do() {
        let body = br#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"replicasets.apps is forbidden: User \"system:serviceaccount:kube-system:nodedoc\" cannot list resource \"replicasets\" in API group \"apps\" at the cluster scope","reason":"Forbidden","details":{"group":"apps","kind":"replicasets"},"code":403}"#;
        let f = failure_of("list ReplicaSets", StatusCode::FORBIDDEN, body);
        assert!(f.forbidden());
        assert_eq!(f.reason, "Forbidden");
        assert!(f
            .reason_text()
            .starts_with("forbidden by RBAC (replicasets.apps is forbidden"));
        let f = failure_of("x", StatusCode::BAD_GATEWAY, b"<html>proxy</html>");
        assert_eq!(f.reason_text(), "HTTP 502 Bad Gateway (<html>proxy</html>)");
    }
}
