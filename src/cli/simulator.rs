//! The built-in sandbox behind `acronis-reports sandbox` and `run --sandbox`, when this build has
//! it (the `sandbox` feature, on by default). A build without it says so instead of starting one.

use std::path::Path;

use super::Fatal;

#[cfg(feature = "sandbox")]
pub use acronis_reports_sandbox::Sandbox as Running;

/// Starts the sandbox with the scenario in `scenario` (the default one without), on `port`
/// (0 for any free one).
#[cfg(feature = "sandbox")]
pub async fn start(scenario: Option<&Path>, port: u16) -> Result<Running, Fatal> {
    use acronis_reports_sandbox::Scenario;
    let scenario = match scenario {
        Some(path) => Scenario::from_yaml_file(path).map_err(Fatal::input)?,
        None => Scenario::default(),
    };
    Running::start(scenario, port)
        .await
        .map_err(|e| Fatal::input(format!("cannot start the sandbox: {e}")))
}

/// A sandbox that cannot exist in this build.
#[cfg(not(feature = "sandbox"))]
pub enum Running {}

#[cfg(not(feature = "sandbox"))]
impl Running {
    pub fn base_url(&self) -> String {
        match *self {}
    }
    pub fn client_id(&self) -> &str {
        match *self {}
    }
    pub fn client_secret(&self) -> &str {
        match *self {}
    }
    pub async fn shutdown(self) {
        match self {}
    }
}

#[cfg(not(feature = "sandbox"))]
pub async fn start(_scenario: Option<&Path>, _port: u16) -> Result<Running, Fatal> {
    Err(Fatal::input(
        "this build of acronis-reports has no built-in sandbox (it was built without the `sandbox` feature); install a release build, or build with the default features",
    ))
}
