//! **A stand-in for kube-apiserver — not a Kubernetes API server.**
//!
//! No kube-apiserver can be installed on nodedoc's build machines (Debian ships only the
//! kubectl client), so the API paths are tested against this: an HTTP/1.1 server on
//! 127.0.0.1 that answers the requests nodedoc (and kubectl) make the way kube-apiserver
//! answers them, with objects in the API's own JSON form:
//!
//! - discovery (`/api`, `/apis`, `/api/v1`, `/apis/apps/v1`) as legacy discovery documents,
//!   enough for `kubectl get deploy,rs -A -o json` to run against it;
//! - lists (`PodList`, `DeploymentList`, `ReplicaSetList`) of every namespace or one, items
//!   without `apiVersion`/`kind` as the API server sends them, `fieldSelector=spec.nodeName=…`,
//!   paging with `limit`, opaque `continue` tokens and `remainingItemCount`;
//! - `GET` and `DELETE` of one object, the delete honouring `DeleteOptions.preconditions`
//!   (`uid`, `resourceVersion`) with the API server's 409 `Conflict` wording;
//! - failures as `Status` objects: 403 `Forbidden` in RBAC's wording, 404 `NotFound`, 410
//!   `Expired` for a continue token, 400 for an unsupported field selector;
//! - `/metrics` as a Prometheus text exposition, when given one.
//!
//! It keeps a log of the requests (method, path and query, whether a bearer token came) and
//! runs a test's hook before answering each, so a test can change the cluster between
//! nodedoc's reading and its writing. Watch is not served (nodedoc does not watch).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};

/// What the stand-in serves. Objects are stored whole, as the API server stores them.
#[derive(Debug, Default)]
pub struct Cluster {
    /// Pods (`apiVersion: v1`).
    pub pods: Vec<Value>,
    /// Deployments (`apps/v1`).
    pub deployments: Vec<Value>,
    /// ReplicaSets (`apps/v1`).
    pub replica_sets: Vec<Value>,
    /// Nodes by name (`GET /api/v1/nodes/NAME` finds these).
    pub nodes: BTreeSet<String>,
    /// `VERB RESOURCE` pairs RBAC refuses: `list replicasets`, `get metrics`, `delete
    /// replicasets`, …
    pub forbidden: BTreeSet<String>,
    /// The `/metrics` exposition; `None`: 404.
    pub metrics: Option<String>,
    /// The next list request that carries a continue token gets 410 Expired.
    pub expire_next_continue: bool,
    /// The cluster's resource version (etcd's revision), bumped by every write.
    pub resource_version: u64,
    /// Every request: `GET /apis/apps/v1/replicasets?limit=500 (token)`.
    pub log: Vec<String>,
}

impl Cluster {
    /// Bumps the cluster's resource version and stamps it on the object at `index` of `kind`.
    pub fn touch(&mut self, kind: Kind, index: usize) {
        self.resource_version += 1;
        let rv = self.resource_version.to_string();
        let objects = self.objects_mut(kind);
        objects[index]["metadata"]["resourceVersion"] = json!(rv);
    }

    /// The index of `namespace/name` of `kind`.
    pub fn find(&self, kind: Kind, namespace: &str, name: &str) -> Option<usize> {
        self.objects(kind)
            .iter()
            .position(|o| o["metadata"]["namespace"] == namespace && o["metadata"]["name"] == name)
    }

    /// The objects of `kind`.
    pub fn objects(&self, kind: Kind) -> &Vec<Value> {
        match kind {
            Kind::Pod => &self.pods,
            Kind::Deployment => &self.deployments,
            Kind::ReplicaSet => &self.replica_sets,
        }
    }

    /// The objects of `kind`, to change.
    pub fn objects_mut(&mut self, kind: Kind) -> &mut Vec<Value> {
        match kind {
            Kind::Pod => &mut self.pods,
            Kind::Deployment => &mut self.deployments,
            Kind::ReplicaSet => &mut self.replica_sets,
        }
    }

    /// Gives every stored object a resource version, in order, as etcd would have.
    pub fn stamp_all(&mut self) {
        for kind in [Kind::Pod, Kind::Deployment, Kind::ReplicaSet] {
            for i in 0..self.objects(kind).len() {
                self.touch(kind, i);
            }
        }
    }
}

/// The kinds the stand-in stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `pods`, core group.
    Pod,
    /// `deployments.apps`.
    Deployment,
    /// `replicasets.apps`.
    ReplicaSet,
}

impl Kind {
    fn plural(self) -> &'static str {
        match self {
            Kind::Pod => "pods",
            Kind::Deployment => "deployments",
            Kind::ReplicaSet => "replicasets",
        }
    }
    fn group(self) -> &'static str {
        match self {
            Kind::Pod => "",
            _ => "apps",
        }
    }
    fn name(self) -> &'static str {
        match self {
            Kind::Pod => "Pod",
            Kind::Deployment => "Deployment",
            Kind::ReplicaSet => "ReplicaSet",
        }
    }
    fn api_version(self) -> &'static str {
        match self {
            Kind::Pod => "v1",
            _ => "apps/v1",
        }
    }
    /// `replicasets.apps`, as messages name a resource.
    fn qualified(self) -> String {
        match self.group() {
            "" => self.plural().to_string(),
            g => format!("{}.{g}", self.plural()),
        }
    }
}

/// One request, as the hook sees it.
#[derive(Clone, Debug)]
pub struct RequestInfo {
    /// `GET`, `DELETE`, …
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The decoded query parameters.
    pub query: Vec<(String, String)>,
}

type Hook = Box<dyn FnMut(&mut Cluster, &RequestInfo) + Send>;

struct Shared {
    cluster: Mutex<Cluster>,
    hook: Mutex<Option<Hook>>,
    stop: AtomicBool,
}

/// A running stand-in; stopped when dropped.
pub struct StandIn {
    addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl StandIn {
    /// Serves `cluster` on a free port of 127.0.0.1.
    pub fn start(mut cluster: Cluster) -> std::io::Result<StandIn> {
        if cluster.resource_version == 0 {
            cluster.stamp_all();
        }
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            cluster: Mutex::new(cluster),
            hook: Mutex::new(None),
            stop: AtomicBool::new(false),
        });
        let serving = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("kube-stand-in".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if serving.stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let shared = Arc::clone(&serving);
                    // A thread per connection: a client that opens a connection and waits
                    // (connection pools do) must not hold up the others.
                    let _ = std::thread::Builder::new()
                        .name("kube-stand-in-conn".into())
                        .spawn(move || serve(stream, &shared));
                }
            })?;
        Ok(StandIn {
            addr,
            shared,
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Writes a kubeconfig for this stand-in into `dir` (with a bearer token, so tests can
    /// see credentials travel) and returns its path.
    pub fn write_kubeconfig(&self, dir: &Path) -> std::io::Result<PathBuf> {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: stand-in\n  cluster:\n    server: {}\n\
             users:\n- name: stand-in\n  user:\n    token: stand-in-token\n\
             contexts:\n- name: stand-in\n  context:\n    cluster: stand-in\n    user: stand-in\n\
             current-context: stand-in\n",
            self.url()
        );
        std::fs::write(&path, text)?;
        Ok(path)
    }

    /// Runs `f` on the cluster (to look or change between requests).
    pub fn with<R>(&self, f: impl FnOnce(&mut Cluster) -> R) -> R {
        f(&mut self
            .shared
            .cluster
            .lock()
            .unwrap_or_else(|p| p.into_inner()))
    }

    /// Calls `hook` before answering every request from now on.
    pub fn set_hook(&self, hook: impl FnMut(&mut Cluster, &RequestInfo) + Send + 'static) {
        *self.shared.hook.lock().unwrap_or_else(|p| p.into_inner()) = Some(Box::new(hook));
    }

    /// The request log so far.
    pub fn log(&self) -> Vec<String> {
        self.with(|c| c.log.clone())
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads one request from `stream`, answers it, closes.
fn serve(stream: TcpStream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    let mut content_length = 0usize;
    let mut token = false;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => content_length = value.trim().parse().unwrap_or(0),
                "authorization" => token = value.trim() == "Bearer stand-in-token",
                _ => {}
            }
        }
    }
    let mut body = vec![0u8; content_length.min(1 << 20)];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("/").to_string();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let info = RequestInfo {
        method: method.clone(),
        path: path.to_string(),
        query: parse_query(query),
    };
    let (code, content_type, text) = {
        let mut cluster = shared.cluster.lock().unwrap_or_else(|p| p.into_inner());
        cluster.log.push(format!(
            "{method} {target}{}",
            if token { " (token)" } else { "" }
        ));
        if let Some(hook) = shared
            .hook
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
        {
            hook(&mut cluster, &info);
        }
        answer(&mut cluster, &info, &body)
    };
    let reason = match code {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        410 => "Gone",
        _ => "Error",
    };
    let mut stream = stream;
    let head = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        text.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(text.as_bytes());
    let _ = stream.flush();
}

fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'+', _) => out.push(b' '),
            (b'%', Some(b)) => {
                out.push(b);
                i += 2;
            }
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

const JSON: &str = "application/json";

/// A `Status` object with `code`.
pub fn status(code: u16, reason: &str, message: &str, details: Value) -> Value {
    let mut status = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code,
    });
    if !details.is_null() {
        status["details"] = details;
    }
    status
}

fn reply(code: u16, value: Value) -> (u16, &'static str, String) {
    (code, JSON, value.to_string())
}

fn forbidden(verb: &str, kind: Kind, namespace: Option<&str>) -> (u16, &'static str, String) {
    let scope = match namespace {
        Some(ns) => format!("in the namespace \"{ns}\""),
        None => "at the cluster scope".to_string(),
    };
    let message = format!(
        "{} is forbidden: User \"system:serviceaccount:kube-system:nodedoc\" cannot {verb} resource \"{}\" in API group \"{}\" {scope}",
        kind.qualified(),
        kind.plural(),
        kind.group()
    );
    reply(
        403,
        status(
            403,
            "Forbidden",
            &message,
            json!({"group": kind.group(), "kind": kind.plural()}),
        ),
    )
}

fn not_found(kind: Kind, name: &str) -> (u16, &'static str, String) {
    reply(
        404,
        status(
            404,
            "NotFound",
            &format!("{} \"{name}\" not found", kind.qualified()),
            json!({"name": name, "group": kind.group(), "kind": kind.plural()}),
        ),
    )
}

/// Routes one request.
fn answer(cluster: &mut Cluster, req: &RequestInfo, body: &[u8]) -> (u16, &'static str, String) {
    let segments: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    match (req.method.as_str(), segments.as_slice()) {
        ("GET", ["api"]) => reply(
            200,
            json!({"kind": "APIVersions", "versions": ["v1"],
                   "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}]}),
        ),
        ("GET", ["apis"]) => reply(
            200,
            json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [{
                "name": "apps",
                "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
                "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"}}]}),
        ),
        ("GET", ["api", "v1"]) => reply(
            200,
            resource_list(
                "v1",
                &[
                    ("pods", "Pod", "pod", true, &["po"]),
                    ("nodes", "Node", "node", false, &["no"]),
                ],
            ),
        ),
        ("GET", ["apis", "apps", "v1"]) => reply(
            200,
            resource_list(
                "apps/v1",
                &[
                    ("deployments", "Deployment", "deployment", true, &["deploy"]),
                    ("replicasets", "ReplicaSet", "replicaset", true, &["rs"]),
                ],
            ),
        ),
        ("GET", ["version"]) => reply(
            200,
            json!({"major": "1", "minor": "35", "gitVersion": "v1.35.0-stand-in", "platform": "linux/amd64"}),
        ),
        ("GET", ["metrics"]) => {
            if cluster.forbidden.contains("get metrics") {
                return reply(
                    403,
                    status(403, "Forbidden", "forbidden: User \"system:serviceaccount:kube-system:nodedoc\" cannot get path \"/metrics\"", json!({})),
                );
            }
            match &cluster.metrics {
                Some(text) => (
                    200,
                    "text/plain; version=0.0.4; charset=utf-8",
                    text.clone(),
                ),
                None => reply(
                    404,
                    status(
                        404,
                        "NotFound",
                        "the server could not find the requested resource",
                        Value::Null,
                    ),
                ),
            }
        }
        ("GET", ["api", "v1", "nodes", name]) => {
            if cluster.nodes.contains(*name) {
                reply(
                    200,
                    json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}),
                )
            } else {
                reply(
                    404,
                    status(
                        404,
                        "NotFound",
                        &format!("nodes \"{name}\" not found"),
                        json!({"name": name, "kind": "nodes"}),
                    ),
                )
            }
        }
        (method, path) => match route(path) {
            Some((kind, namespace, name)) => match (method, name) {
                ("GET", None) => list(cluster, kind, namespace, &req.query),
                ("GET", Some(name)) => get(cluster, kind, namespace.unwrap_or(""), name),
                ("DELETE", Some(name)) => {
                    delete(cluster, kind, namespace.unwrap_or(""), name, body)
                }
                _ => reply(
                    405,
                    status(
                        405,
                        "MethodNotAllowed",
                        "the server does not allow this method on the requested resource",
                        Value::Null,
                    ),
                ),
            },
            None => reply(
                404,
                status(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                    Value::Null,
                ),
            ),
        },
    }
}

fn resource_list(group_version: &str, resources: &[(&str, &str, &str, bool, &[&str])]) -> Value {
    let resources: Vec<Value> = resources
        .iter()
        .map(|(name, kind, singular, namespaced, short)| {
            json!({"name": name, "singularName": singular, "namespaced": namespaced, "kind": kind,
                   "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
                   "shortNames": short, "categories": ["all"]})
        })
        .collect();
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources})
}

/// `/api/v1/[namespaces/NS/]pods[/NAME]`, `/apis/apps/v1/[namespaces/NS/]KIND[/NAME]`.
fn route<'p>(segments: &[&'p str]) -> Option<(Kind, Option<&'p str>, Option<&'p str>)> {
    let rest = match segments {
        ["api", "v1", rest @ ..] => rest,
        ["apis", "apps", "v1", rest @ ..] => rest,
        _ => return None,
    };
    let core = segments[0] == "api";
    let (namespace, rest) = match rest {
        ["namespaces", ns, rest @ ..] => (Some(*ns), rest),
        rest => (None, rest),
    };
    let (plural, name) = match rest {
        [plural] => (*plural, None),
        [plural, name] => (*plural, Some(*name)),
        _ => return None,
    };
    let kind = match (core, plural) {
        (true, "pods") => Kind::Pod,
        (false, "deployments") => Kind::Deployment,
        (false, "replicasets") => Kind::ReplicaSet,
        _ => return None,
    };
    if name.is_some() && namespace.is_none() {
        return None;
    }
    Some((kind, namespace, name))
}

fn key_of(object: &Value) -> String {
    format!(
        "{}/{}",
        object["metadata"]["namespace"].as_str().unwrap_or(""),
        object["metadata"]["name"].as_str().unwrap_or("")
    )
}

fn list(
    cluster: &mut Cluster,
    kind: Kind,
    namespace: Option<&str>,
    query: &[(String, String)],
) -> (u16, &'static str, String) {
    if cluster
        .forbidden
        .contains(&format!("list {}", kind.plural()))
    {
        return forbidden("list", kind, namespace);
    }
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let mut node_name: Option<&str> = None;
    if let Some(selector) = param("fieldSelector").filter(|s| !s.is_empty()) {
        match selector.split_once('=') {
            Some(("spec.nodeName", value)) if kind == Kind::Pod => node_name = Some(value),
            _ => {
                return reply(
                    400,
                    status(400, "BadRequest", &format!("Unable to find \"{}\" that match label selector \"\", field selector \"{selector}\": field label not supported: {}", kind.qualified(), selector.split('=').next().unwrap_or("")), Value::Null),
                )
            }
        }
    }
    let limit: usize = param("limit")
        .and_then(|l| l.parse().ok())
        .filter(|&l| l > 0)
        .unwrap_or(usize::MAX);
    let mut start: Option<String> = None;
    let mut list_rv = cluster.resource_version;
    if let Some(token) = param("continue").filter(|t| !t.is_empty()) {
        if std::mem::take(&mut cluster.expire_next_continue) {
            return reply(
                410,
                status(410, "Expired", "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.", Value::Null),
            );
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(token)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
        match decoded {
            Some(v) if v["v"] == "meta.k8s.io/v1" => {
                start = v["start"].as_str().map(str::to_string);
                list_rv = v["rv"].as_u64().unwrap_or(list_rv);
            }
            _ => {
                return reply(
                    400,
                    status(
                        400,
                        "BadRequest",
                        "continue key is not valid: illegal base64 data at input byte 0",
                        Value::Null,
                    ),
                )
            }
        }
    }
    let mut matching: Vec<&Value> = cluster
        .objects(kind)
        .iter()
        .filter(|o| namespace.is_none_or(|ns| o["metadata"]["namespace"] == ns))
        .filter(|o| node_name.is_none_or(|n| o["spec"]["nodeName"] == n))
        .collect();
    matching.sort_by_key(|o| key_of(o));
    let from = match &start {
        Some(start) => matching.partition_point(|o| key_of(o) < *start),
        None => 0,
    };
    let page: Vec<Value> = matching[from..]
        .iter()
        .take(limit)
        .map(|o| {
            let mut item = (*o).clone();
            if let Some(map) = item.as_object_mut() {
                // List items carry no type meta: the list's kind says it.
                map.remove("apiVersion");
                map.remove("kind");
            }
            item
        })
        .collect();
    let remaining = matching.len() - from - page.len();
    let mut metadata = json!({"resourceVersion": list_rv.to_string()});
    if remaining > 0 {
        let next = key_of(matching[from + page.len()]);
        let token = json!({"v": "meta.k8s.io/v1", "rv": list_rv, "start": next});
        metadata["continue"] =
            json!(base64::engine::general_purpose::STANDARD.encode(token.to_string()));
        metadata["remainingItemCount"] = json!(remaining);
    }
    reply(
        200,
        json!({"kind": format!("{}List", kind.name()), "apiVersion": kind.api_version(), "metadata": metadata, "items": page}),
    )
}

fn get(cluster: &Cluster, kind: Kind, namespace: &str, name: &str) -> (u16, &'static str, String) {
    if cluster
        .forbidden
        .contains(&format!("get {}", kind.plural()))
    {
        return forbidden("get", kind, Some(namespace));
    }
    match cluster.find(kind, namespace, name) {
        Some(i) => reply(200, cluster.objects(kind)[i].clone()),
        None => not_found(kind, name),
    }
}

fn delete(
    cluster: &mut Cluster,
    kind: Kind,
    namespace: &str,
    name: &str,
    body: &[u8],
) -> (u16, &'static str, String) {
    if cluster
        .forbidden
        .contains(&format!("delete {}", kind.plural()))
    {
        return forbidden("delete", kind, Some(namespace));
    }
    let Some(i) = cluster.find(kind, namespace, name) else {
        return not_found(kind, name);
    };
    let options: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let object = &cluster.objects(kind)[i];
    let uid = object["metadata"]["uid"].as_str().unwrap_or("").to_string();
    let rv = object["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let conflict = |what: String| {
        reply(
            409,
            status(
                409,
                "Conflict",
                &format!(
                    "Operation cannot be fulfilled on {} \"{name}\": {what}",
                    kind.qualified()
                ),
                json!({"name": name, "group": kind.group(), "kind": kind.plural()}),
            ),
        )
    };
    if let Some(want) = options["preconditions"]["uid"].as_str() {
        if want != uid {
            return conflict(format!(
                "Precondition failed: UID in precondition: {want}, UID in object meta: {uid}"
            ));
        }
    }
    if let Some(want) = options["preconditions"]["resourceVersion"].as_str() {
        if want != rv {
            return conflict(format!(
                "Precondition failed: ResourceVersion in precondition: {want}, ResourceVersion in object meta: {rv}"
            ));
        }
    }
    cluster.objects_mut(kind).remove(i);
    cluster.resource_version += 1;
    reply(
        200,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
               "details": {"name": name, "group": kind.group(), "kind": kind.plural(), "uid": uid}}),
    )
}

/// Objects in the API server's own form, for the stand-in and for tests.
pub mod objects {
    use serde_json::{json, Value};

    /// An RFC 3339 time, `unix` seconds.
    pub fn time(unix: i64) -> String {
        jiff::Timestamp::from_second(unix)
            .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_default()
    }

    /// A Deployment as `kubectl get deploy -o json` shows one: `revision` is its current
    /// revision; `limit` its stored `revisionHistoryLimit` (None: the field absent).
    pub fn deployment(
        namespace: &str,
        name: &str,
        uid: &str,
        revision: u64,
        replicas: i32,
        limit: Option<i32>,
        created: i64,
    ) -> Value {
        let mut spec = json!({
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "progressDeadlineSeconds": 600,
            "template": template(name, &format!("registry.example/{name}:{revision}")),
        });
        if let Some(limit) = limit {
            spec["revisionHistoryLimit"] = json!(limit);
        }
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {
                "name": name, "namespace": namespace, "uid": uid, "generation": revision,
                "creationTimestamp": time(created),
                "labels": {"app": name},
                "annotations": {"deployment.kubernetes.io/revision": revision.to_string()},
                "managedFields": [
                    {"manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": "apps/v1",
                     "time": time(created), "fieldsType": "FieldsV1",
                     "fieldsV1": {"f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {}}}}}},
                    {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "apps/v1",
                     "time": time(created), "fieldsType": "FieldsV1", "subresource": "status",
                     "fieldsV1": {"f:status": {"f:availableReplicas": {}, "f:replicas": {}}}}
                ]
            },
            "spec": spec,
            "status": {
                "observedGeneration": revision, "replicas": replicas, "updatedReplicas": replicas,
                "readyReplicas": replicas, "availableReplicas": replicas,
                "conditions": [
                    {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                     "message": "Deployment has minimum availability.",
                     "lastUpdateTime": time(created), "lastTransitionTime": time(created)},
                    {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                     "message": format!("ReplicaSet \"{name}-{}\" has successfully progressed.", hash(name, revision)),
                     "lastUpdateTime": time(created), "lastTransitionTime": time(created)}
                ]
            }
        })
    }

    /// The ReplicaSet of `deployment`'s `revision`, with `replicas` pods.
    pub fn replica_set(deployment: &Value, revision: u64, replicas: i32, created: i64) -> Value {
        let meta = &deployment["metadata"];
        let name = meta["name"].as_str().unwrap_or("");
        let namespace = meta["namespace"].as_str().unwrap_or("");
        let h = hash(name, revision);
        let rs_name = format!("{name}-{h}");
        let mut template = template(name, &format!("registry.example/{name}:{revision}"));
        template["metadata"]["labels"]["pod-template-hash"] = json!(h);
        json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {
                "name": rs_name, "namespace": namespace, "uid": format!("{}-rs-{revision}", meta["uid"].as_str().unwrap_or("")),
                "generation": if replicas == 0 { 2 } else { 1 },
                "creationTimestamp": time(created),
                "labels": {"app": name, "pod-template-hash": h},
                "annotations": {
                    "deployment.kubernetes.io/desired-replicas": deployment["spec"]["replicas"].to_string(),
                    "deployment.kubernetes.io/max-replicas": "4",
                    "deployment.kubernetes.io/revision": revision.to_string()
                },
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": name,
                                     "uid": meta["uid"], "controller": true, "blockOwnerDeletion": true}],
                "managedFields": [{"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "apps/v1",
                                   "time": time(created), "fieldsType": "FieldsV1",
                                   "fieldsV1": {"f:metadata": {"f:annotations": {}, "f:ownerReferences": {}}, "f:spec": {"f:replicas": {}}}}]
            },
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name, "pod-template-hash": h}}, "template": template},
            "status": if replicas == 0 {
                json!({"replicas": 0, "observedGeneration": 2})
            } else {
                json!({"replicas": replicas, "fullyLabeledReplicas": replicas, "readyReplicas": replicas,
                       "availableReplicas": replicas, "observedGeneration": 1})
            }
        })
    }

    /// A running pod of `node` with one container per `(name, container id)`.
    pub fn pod(
        namespace: &str,
        name: &str,
        uid: &str,
        node: &str,
        containers: &[(&str, &str)],
        created: i64,
    ) -> Value {
        let statuses: Vec<Value> = containers
            .iter()
            .map(|(c, id)| {
                json!({"name": c, "state": {"running": {"startedAt": time(created + 2)}}, "lastState": {},
                       "ready": true, "restartCount": 0, "image": format!("registry.example/{c}:1"),
                       "imageID": format!("registry.example/{c}@sha256:00"), "containerID": format!("containerd://{id}"),
                       "started": true})
            })
            .collect();
        let specs: Vec<Value> = containers
            .iter()
            .map(|(c, _)| json!({"name": c, "image": format!("registry.example/{c}:1"), "resources": {},
                                 "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                                 "imagePullPolicy": "IfNotPresent"}))
            .collect();
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "uid": uid, "creationTimestamp": time(created),
                         "labels": {"app": name}},
            "spec": {"nodeName": node, "containers": specs, "restartPolicy": "Always",
                     "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
                     "serviceAccountName": "default", "schedulerName": "default-scheduler",
                     "enableServiceLinks": true, "preemptionPolicy": "PreemptLowerPriority", "priority": 0},
            "status": {"phase": "Running", "qosClass": "BestEffort", "hostIP": "10.0.0.5", "podIP": "10.244.1.7",
                       "startTime": time(created),
                       "conditions": [
                           {"type": "PodReadyToStartContainers", "status": "True", "lastProbeTime": null, "lastTransitionTime": time(created + 1)},
                           {"type": "Initialized", "status": "True", "lastProbeTime": null, "lastTransitionTime": time(created)},
                           {"type": "Ready", "status": "True", "lastProbeTime": null, "lastTransitionTime": time(created + 3)},
                           {"type": "ContainersReady", "status": "True", "lastProbeTime": null, "lastTransitionTime": time(created + 3)},
                           {"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": time(created)}
                       ],
                       "containerStatuses": statuses}
        })
    }

    /// Marks `pod` deleted at `requested` with a `grace`-second grace period, as the API server
    /// does: `deletionTimestamp` = request time + grace period.
    pub fn terminating(mut pod: Value, requested: i64, grace: i64) -> Value {
        pod["metadata"]["deletionTimestamp"] = json!(time(requested + grace));
        pod["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
        pod
    }

    fn template(app: &str, image: &str) -> Value {
        json!({
            "metadata": {"creationTimestamp": null, "labels": {"app": app}},
            "spec": {
                "containers": [{"name": app, "image": image, "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                                "resources": {"limits": {"memory": "256Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}},
                                "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                                "imagePullPolicy": "IfNotPresent"}],
                "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
                "securityContext": {}, "schedulerName": "default-scheduler"
            }
        })
    }

    /// A stable 10-character pod-template-hash for a name and revision (the controller's is
    /// an FNV hash of the template; any stable 10 characters of its alphabet do here).
    pub fn hash(name: &str, revision: u64) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        let mut h: u64 = 0xcbf29ce484222325;
        for b in name.bytes().chain(revision.to_le_bytes()) {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
        (0..10)
            .map(|_| {
                let c = ALPHABET[(h % ALPHABET.len() as u64) as usize] as char;
                h /= ALPHABET.len() as u64;
                c
            })
            .collect()
    }
}
