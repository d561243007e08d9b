//! The built-in sandbox behind `acronis-reports sandbox` and `run --sandbox`, when this build has
//! it (the `sandbox` feature, on by default). A build without it says so instead of starting one.

use std::path::Path;

use super::SessionError;

#[cfg(feature = "sandbox")]
pub use acronis_reports_sandbox::Sandbox as Running;

/// Starts the sandbox with the scenario in `scenario` (the default one without), on `port`
/// (0 for any free one).
#[cfg(feature = "sandbox")]
pub async fn start(scenario: Option<&Path>, port: u16) -> Result<Running, SessionError> {
    use acronis_reports_sandbox::Scenario;
    let scenario = match scenario {
        Some(path) => Scenario::from_yaml_file(path).map_err(SessionError::SandboxScenario)?,
        None => Scenario::default(),
    };
    Running::start(scenario, port)
        .await
        .map_err(SessionError::SandboxStart)
}

/// A sandbox that cannot exist in this build: it has no values, so its methods (the ones the
/// command line calls on a running sandbox) can never be called.
#[cfg(not(feature = "sandbox"))]
pub enum Running {}

#[cfg(not(feature = "sandbox"))]
impl Running {
    /// The sandbox's base URL, as the real sandbox reports it.
    pub fn base_url(&self) -> String {
        match *self {}
    }
    /// The API client id the sandbox accepts.
    pub fn client_id(&self) -> &str {
        match *self {}
    }
    /// The API client secret the sandbox accepts.
    pub fn client_secret(&self) -> &str {
        match *self {}
    }
    /// Stops the sandbox.
    pub async fn shutdown(self) {
        match self {}
    }
}

/// Fails: this build has no sandbox to start ([`SessionError::NoSandbox`]).
#[cfg(not(feature = "sandbox"))]
pub async fn start(_scenario: Option<&Path>, _port: u16) -> Result<Running, SessionError> {
    Err(SessionError::NoSandbox)
}
