//! A minimal client of the Kubernetes Container Runtime Interface (CRI v1, `runtime.v1`) on a
//! unix socket: the calls kubelet makes to create a pod, run a container in it, stop it and
//! remove it. nodedoc's labs drive a real containerd through it exactly as kubelet would, so the
//! runtime's CRI code paths (and what they log when a stop fails) are the real ones.
//!
//! Why hand-written messages: the published bindings (`k8s-cri`) generate every CRI message
//! at build time with `protoc`, an extra system package for a dozen messages. These are the
//! fields of `k8s.io/cri-api/pkg/apis/runtime/v1/api.proto` that the labs use, with the tags
//! of that file; prost ignores fields it does not know, so replies decode whatever else the
//! runtime sends.

#![deny(missing_docs)]

use std::path::{Path, PathBuf};
use std::time::Duration;

pub mod v1 {
    //! The messages, with the names and tags of `runtime.v1` in `api.proto` (see it for what
    //! each field means). Only the fields nodedoc sets or reads are declared.
    #![allow(missing_docs)]

    use std::collections::HashMap;

    /// `NamespaceMode` of the CRI.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, prost::Enumeration)]
    #[repr(i32)]
    pub enum NamespaceMode {
        /// Shared by the pod's containers.
        Pod = 0,
        /// The container's own.
        Container = 1,
        /// The node's (host network, host pid).
        Node = 2,
        /// Another container's.
        Target = 3,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NamespaceOption {
        #[prost(enumeration = "NamespaceMode", tag = "1")]
        pub network: i32,
        #[prost(enumeration = "NamespaceMode", tag = "2")]
        pub pid: i32,
        #[prost(enumeration = "NamespaceMode", tag = "3")]
        pub ipc: i32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PodSandboxMetadata {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub uid: String,
        #[prost(string, tag = "3")]
        pub namespace: String,
        #[prost(uint32, tag = "4")]
        pub attempt: u32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct LinuxSandboxSecurityContext {
        #[prost(message, optional, tag = "1")]
        pub namespace_options: Option<NamespaceOption>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct LinuxPodSandboxConfig {
        #[prost(string, tag = "1")]
        pub cgroup_parent: String,
        #[prost(message, optional, tag = "2")]
        pub security_context: Option<LinuxSandboxSecurityContext>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PodSandboxConfig {
        #[prost(message, optional, tag = "1")]
        pub metadata: Option<PodSandboxMetadata>,
        #[prost(string, tag = "2")]
        pub hostname: String,
        #[prost(string, tag = "3")]
        pub log_directory: String,
        #[prost(map = "string, string", tag = "6")]
        pub labels: HashMap<String, String>,
        #[prost(map = "string, string", tag = "7")]
        pub annotations: HashMap<String, String>,
        #[prost(message, optional, tag = "8")]
        pub linux: Option<LinuxPodSandboxConfig>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RunPodSandboxRequest {
        #[prost(message, optional, tag = "1")]
        pub config: Option<PodSandboxConfig>,
        #[prost(string, tag = "2")]
        pub runtime_handler: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RunPodSandboxResponse {
        #[prost(string, tag = "1")]
        pub pod_sandbox_id: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ContainerMetadata {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(uint32, tag = "2")]
        pub attempt: u32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ImageSpec {
        #[prost(string, tag = "1")]
        pub image: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct LinuxContainerSecurityContext {
        #[prost(message, optional, tag = "3")]
        pub namespace_options: Option<NamespaceOption>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct LinuxContainerConfig {
        #[prost(message, optional, tag = "2")]
        pub security_context: Option<LinuxContainerSecurityContext>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ContainerConfig {
        #[prost(message, optional, tag = "1")]
        pub metadata: Option<ContainerMetadata>,
        #[prost(message, optional, tag = "2")]
        pub image: Option<ImageSpec>,
        #[prost(string, repeated, tag = "3")]
        pub command: Vec<String>,
        #[prost(string, repeated, tag = "4")]
        pub args: Vec<String>,
        #[prost(map = "string, string", tag = "9")]
        pub labels: HashMap<String, String>,
        #[prost(string, tag = "11")]
        pub log_path: String,
        #[prost(message, optional, tag = "15")]
        pub linux: Option<LinuxContainerConfig>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct CreateContainerRequest {
        #[prost(string, tag = "1")]
        pub pod_sandbox_id: String,
        #[prost(message, optional, tag = "2")]
        pub config: Option<ContainerConfig>,
        #[prost(message, optional, tag = "3")]
        pub sandbox_config: Option<PodSandboxConfig>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct CreateContainerResponse {
        #[prost(string, tag = "1")]
        pub container_id: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ContainerIdRequest {
        #[prost(string, tag = "1")]
        pub container_id: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct StopContainerRequest {
        #[prost(string, tag = "1")]
        pub container_id: String,
        #[prost(int64, tag = "2")]
        pub timeout: i64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ContainerStatusRequest {
        #[prost(string, tag = "1")]
        pub container_id: String,
        #[prost(bool, tag = "2")]
        pub verbose: bool,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ContainerStatus {
        #[prost(string, tag = "1")]
        pub id: String,
        #[prost(int32, tag = "3")]
        pub state: i32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ContainerStatusResponse {
        #[prost(message, optional, tag = "1")]
        pub status: Option<ContainerStatus>,
        #[prost(map = "string, string", tag = "2")]
        pub info: HashMap<String, String>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PodSandboxIdRequest {
        #[prost(string, tag = "1")]
        pub pod_sandbox_id: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct VersionRequest {
        #[prost(string, tag = "1")]
        pub version: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct VersionResponse {
        #[prost(string, tag = "1")]
        pub version: String,
        #[prost(string, tag = "2")]
        pub runtime_name: String,
        #[prost(string, tag = "3")]
        pub runtime_version: String,
        #[prost(string, tag = "4")]
        pub runtime_api_version: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Empty {}

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ListContainersRequest {}

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Container {
        #[prost(string, tag = "1")]
        pub id: String,
        #[prost(string, tag = "2")]
        pub pod_sandbox_id: String,
        #[prost(message, optional, tag = "3")]
        pub metadata: Option<ContainerMetadata>,
        #[prost(int32, tag = "6")]
        pub state: i32,
        #[prost(map = "string, string", tag = "8")]
        pub labels: HashMap<String, String>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ListContainersResponse {
        #[prost(message, repeated, tag = "1")]
        pub containers: Vec<Container>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ListPodSandboxRequest {}

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PodSandbox {
        #[prost(string, tag = "1")]
        pub id: String,
        #[prost(message, optional, tag = "2")]
        pub metadata: Option<PodSandboxMetadata>,
        #[prost(int32, tag = "3")]
        pub state: i32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ListPodSandboxResponse {
        #[prost(message, repeated, tag = "1")]
        pub items: Vec<PodSandbox>,
    }
}

use v1::*;

/// A failed CRI call.
#[derive(Debug, thiserror::Error)]
pub enum CriError {
    /// The socket could not be reached.
    #[error("cannot reach the CRI socket {socket}: {detail}")]
    Connect {
        /// The socket.
        socket: PathBuf,
        /// What failed.
        detail: String,
    },
    /// The runtime answered with an error status (or the deadline passed).
    #[error("CRI {call} failed: {code:?}: {message}")]
    Status {
        /// The call (`StopContainer`, …).
        call: &'static str,
        /// The gRPC status code.
        code: tonic::Code,
        /// The runtime's message.
        message: String,
    },
}

impl CriError {
    /// The gRPC status code of a failed call.
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            CriError::Status { code, .. } => Some(*code),
            CriError::Connect { .. } => None,
        }
    }
}

/// A connection to a CRI runtime service (`RuntimeService`) on a unix socket. Blocking: each
/// call runs on a private single-threaded runtime, so callers need not be async.
pub struct CriClient {
    runtime: tokio::runtime::Runtime,
    channel: tonic::transport::Channel,
}

/// How long calls other than `StopContainer` may take: kubelet's default
/// `--runtime-request-timeout` is 2 minutes; a lab's runtime answers in milliseconds.
const CALL_DEADLINE: Duration = Duration::from_secs(60);

impl CriClient {
    /// Connects to the runtime listening on `socket` (containerd's `--address`).
    pub fn connect(socket: &Path) -> Result<CriClient, CriError> {
        let connect_error = |detail: String| CriError::Connect {
            socket: socket.to_path_buf(),
            detail,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| connect_error(format!("cannot start an I/O runtime: {e}")))?;
        let path = socket.to_path_buf();
        let channel = runtime
            .block_on(async move {
                // The URI is required by the API and unused: the connector dials the socket.
                tonic::transport::Endpoint::from_static("http://cri.invalid")
                    .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
                        let path = path.clone();
                        async move {
                            let stream = tokio::net::UnixStream::connect(path).await?;
                            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
                        }
                    }))
                    .await
            })
            .map_err(|e| {
                // tonic says "transport error"; the cause (no such file, refused) is below it.
                let mut detail = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(cause) = source {
                    let text = cause.to_string();
                    // io errors come wrapped twice with the same words.
                    if !detail.ends_with(&text) {
                        detail.push_str(": ");
                        detail.push_str(&text);
                    }
                    source = cause.source();
                }
                connect_error(detail)
            })?;
        Ok(CriClient { runtime, channel })
    }

    /// One unary call of `runtime.v1.RuntimeService` with a gRPC deadline: the runtime sees
    /// it as its request context's deadline, as it sees kubelet's.
    fn call<Req, Resp>(
        &self,
        call: &'static str,
        request: Req,
        deadline: Duration,
    ) -> Result<Resp, CriError>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        let status_error = |status: tonic::Status| CriError::Status {
            call,
            code: status.code(),
            message: status.message().to_string(),
        };
        let path = tonic::codegen::http::uri::PathAndQuery::from_maybe_shared(format!(
            "/runtime.v1.RuntimeService/{call}"
        ))
        .expect("CRI method paths are valid URI paths");
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        self.runtime.block_on(async move {
            grpc.ready()
                .await
                .map_err(|e| status_error(tonic::Status::unavailable(e.to_string())))?;
            let mut request = tonic::Request::new(request);
            request.set_timeout(deadline);
            grpc.unary(request, path, tonic_prost::ProstCodec::default())
                .await
                .map(tonic::Response::into_inner)
                .map_err(status_error)
        })
    }

    /// `Version`: the runtime's name and version.
    pub fn version(&self) -> Result<VersionResponse, CriError> {
        let request = VersionRequest {
            version: "v1".into(),
        };
        self.call("Version", request, CALL_DEADLINE)
    }

    /// `RunPodSandbox`: creates and starts a pod's sandbox; returns its id.
    pub fn run_pod_sandbox(&self, config: PodSandboxConfig) -> Result<String, CriError> {
        let request = RunPodSandboxRequest {
            config: Some(config),
            runtime_handler: String::new(),
        };
        self.call::<_, RunPodSandboxResponse>("RunPodSandbox", request, CALL_DEADLINE)
            .map(|r| r.pod_sandbox_id)
    }

    /// `CreateContainer` in the sandbox `pod` (created with `sandbox`); returns its id.
    pub fn create_container(
        &self,
        pod: &str,
        config: ContainerConfig,
        sandbox: PodSandboxConfig,
    ) -> Result<String, CriError> {
        let request = CreateContainerRequest {
            pod_sandbox_id: pod.into(),
            config: Some(config),
            sandbox_config: Some(sandbox),
        };
        self.call::<_, CreateContainerResponse>("CreateContainer", request, CALL_DEADLINE)
            .map(|r| r.container_id)
    }

    /// `StartContainer`.
    pub fn start_container(&self, id: &str) -> Result<(), CriError> {
        let request = ContainerIdRequest {
            container_id: id.into(),
        };
        self.call::<_, Empty>("StartContainer", request, CALL_DEADLINE)
            .map(drop)
    }

    /// `StopContainer` as kubelet sends it: the stop signal, `grace_secs` later SIGKILL, and
    /// the whole call bounded by `deadline` (kubelet: `--runtime-request-timeout` plus the
    /// grace period). A container whose init cannot exit fails with `DeadlineExceeded`.
    pub fn stop_container(
        &self,
        id: &str,
        grace_secs: i64,
        deadline: Duration,
    ) -> Result<(), CriError> {
        let request = StopContainerRequest {
            container_id: id.into(),
            timeout: grace_secs,
        };
        self.call::<_, Empty>("StopContainer", request, deadline)
            .map(drop)
    }

    /// `ContainerStatus`, verbose: `info["info"]` is the runtime's JSON, with the init's
    /// `pid` for containerd.
    pub fn container_status(&self, id: &str) -> Result<ContainerStatusResponse, CriError> {
        let request = ContainerStatusRequest {
            container_id: id.into(),
            verbose: true,
        };
        self.call("ContainerStatus", request, CALL_DEADLINE)
    }

    /// The host pid of a running container's init, from the verbose `ContainerStatus`.
    pub fn container_pid(&self, id: &str) -> Result<Option<i32>, CriError> {
        let status = self.container_status(id)?;
        Ok(status.info.get("info").and_then(|info| json_pid(info)))
    }

    /// `StopPodSandbox`: stops every container of the pod and its sandbox.
    pub fn stop_pod_sandbox(&self, id: &str) -> Result<(), CriError> {
        let request = PodSandboxIdRequest {
            pod_sandbox_id: id.into(),
        };
        self.call::<_, Empty>("StopPodSandbox", request, CALL_DEADLINE)
            .map(drop)
    }

    /// `RemovePodSandbox`: removes the pod's containers and its sandbox.
    pub fn remove_pod_sandbox(&self, id: &str) -> Result<(), CriError> {
        let request = PodSandboxIdRequest {
            pod_sandbox_id: id.into(),
        };
        self.call::<_, Empty>("RemovePodSandbox", request, CALL_DEADLINE)
            .map(drop)
    }
}

impl CriClient {
    /// `ListContainers`, unfiltered, within `deadline`.
    pub fn list_containers(&self, deadline: Duration) -> Result<Vec<Container>, CriError> {
        self.call::<_, ListContainersResponse>("ListContainers", ListContainersRequest {}, deadline)
            .map(|r| r.containers)
    }

    /// `ListPodSandbox`, unfiltered, within `deadline`.
    pub fn list_pod_sandboxes(&self, deadline: Duration) -> Result<Vec<PodSandbox>, CriError> {
        self.call::<_, ListPodSandboxResponse>("ListPodSandbox", ListPodSandboxRequest {}, deadline)
            .map(|r| r.items)
    }

    /// Every container and pod sandbox the runtime knows, named: container name, pod uid,
    /// namespace and name (a sandbox is listed as the container of the same id, unnamed —
    /// containerd runs it as one). Two read-only calls, as `crictl pods` and `crictl ps -a`,
    /// each bounded by `deadline`: on a node whose runtime is stuck (PLEG unhealthy) they may
    /// never answer, and a diagnosis must not wait for them.
    pub fn inventory(
        &self,
        deadline: Duration,
    ) -> Result<Vec<nodedoc_model::KnownContainer>, CriError> {
        let pods = self.list_pod_sandboxes(deadline)?;
        let containers = self.list_containers(deadline)?;
        let pod_of = |id: &str| {
            pods.iter()
                .find(|p| p.id == id)
                .and_then(|p| p.metadata.as_ref())
        };
        let known = |id: &str, name: Option<String>, pod: Option<&PodSandboxMetadata>| {
            nodedoc_model::KnownContainer {
                id: id.to_string(),
                name,
                pod_uid: pod.map(|p| p.uid.clone()),
                pod_namespace: pod.map(|p| p.namespace.clone()),
                pod_name: pod.map(|p| p.name.clone()),
            }
        };
        let mut out: Vec<nodedoc_model::KnownContainer> = pods
            .iter()
            .map(|p| known(&p.id, None, p.metadata.as_ref()))
            .collect();
        out.extend(containers.iter().map(|c| {
            known(
                &c.id,
                c.metadata.as_ref().map(|m| m.name.clone()),
                pod_of(&c.pod_sandbox_id),
            )
        }));
        Ok(out)
    }
}

/// The `"pid": N` member of containerd's verbose status JSON. A scan, not a JSON parser: the
/// value is a top-level integer and nothing else in that document is named `pid`.
fn json_pid(info: &str) -> Option<i32> {
    let at = info.find("\"pid\":")? + "\"pid\":".len();
    let digits: String = info[at..]
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok().filter(|&pid| pid > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn messages_encode_with_the_tags_of_api_proto() {
        // StopContainerRequest{container_id: "c", timeout: 2}: field 1 string, field 2 varint.
        let bytes = StopContainerRequest {
            container_id: "c".into(),
            timeout: 2,
        }
        .encode_to_vec();
        assert_eq!(bytes, [0x0a, 1, b'c', 0x10, 2]);
        // NamespaceOption{network: NODE, pid: CONTAINER}.
        let bytes = NamespaceOption {
            network: NamespaceMode::Node as i32,
            pid: NamespaceMode::Container as i32,
            ipc: 0,
        }
        .encode_to_vec();
        assert_eq!(bytes, [0x08, 2, 0x10, 1]);
    }

    #[test]
    fn the_init_pid_is_read_from_containerds_verbose_status() {
        let info = r#"{"sandboxID":"ab","pid":15554,"removing":false,"snapshotter":"native"}"#;
        assert_eq!(json_pid(info), Some(15554));
        assert_eq!(json_pid(r#"{"pid":0}"#), None);
        assert_eq!(json_pid("{}"), None);
    }

    #[test]
    fn an_absent_socket_is_a_connect_error_naming_it() {
        let dir = std::env::temp_dir().join(format!("nodedoc-cri-absent-{}", std::process::id()));
        let err = CriClient::connect(&dir.join("none.sock"))
            .err()
            .expect("no socket");
        assert!(err.to_string().contains("none.sock"), "{err}");
        assert!(
            err.to_string().contains("No such file or directory"),
            "{err}"
        );
    }
}
