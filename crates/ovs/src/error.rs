/// Why part of the OVS collection or the fix failed. Every variant names what it was
/// reading or talking to.
#[derive(Debug, thiserror::Error)]
pub enum OvsError {
    /// The OVSDB endpoint given is not one nodedoc can connect to.
    #[error(transparent)]
    Endpoint(#[from] nodedoc_ovsdb::EndpointError),
    /// Talking to OVSDB failed (the error names the endpoint and the method).
    #[error(transparent)]
    Ovsdb(#[from] nodedoc_ovsdb::Error),
    /// ovs-vswitchd.log was not read (the error names the file and why: missing, not a
    /// regular file, the wrong owner, a read that stalled).
    #[error("ovs-vswitchd log {0}")]
    Log(nodedoc_model::hostfile::HostFileError),
    /// The async runtime for the OVSDB client could not be started.
    #[error("cannot start the OVSDB client runtime: {0}")]
    Runtime(std::io::Error),
    /// A fix was asked for rows that the plan does not know.
    #[error("{0}")]
    Plan(String),
}
