use std::path::PathBuf;
use std::sync::Arc;

use crate::api::{self, Client, ClientOptions, Credentials};
use crate::discover;
use crate::job::Job;
use crate::plan::{self, Plan};
use crate::results::DiscoveryRecord;
use crate::secret::Secret;

use super::simulator;
use super::{SessionError, Target};

/// Which API a command talks to.
#[derive(Clone, Debug, Default)]
pub struct ConnectionOptions {
    /// `--base-url`: before `ACRONIS_BASE_URL` and the job file's `api.base_url`.
    pub base_url: Option<String>,
    /// `--sandbox`: the built-in sandbox, with this scenario file if one is given.
    pub sandbox: Option<Option<PathBuf>>,
}

/// A connection to the API: the client and, with `--sandbox`, the sandbox serving it.
pub struct Connection {
    pub(crate) client: Arc<Client>,
    sandbox: Option<simulator::Running>,
    /// The API's base URL in one spelling, however it was written (for the journal and the
    /// manifest).
    pub(crate) base_url: String,
}

/// Where a connection goes: the built-in sandbox (with its scenario file, if one is given), or
/// an API whose URL and credentials are resolved.
#[derive(Debug)]
pub(crate) enum Endpoint {
    Sandbox(Option<PathBuf>),
    Api(Target),
}

impl Endpoint {
    /// The sandbox when asked for, else the target from the options, the environment (`env`)
    /// and the job file; an error says what to set.
    pub(crate) fn resolve(
        options: &ConnectionOptions,
        job: &Job,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, SessionError> {
        Ok(match &options.sandbox {
            Some(scenario) => Self::Sandbox(scenario.clone()),
            None => Self::Api(Target::resolve(options.base_url.as_deref(), job, env)?),
        })
    }
}

impl Connection {
    /// [`Connection::connect`] to the endpoint the options, the environment (`env`) and the job
    /// file name.
    pub async fn open(
        options: &ConnectionOptions,
        job: &Job,
        env: &dyn Fn(&str) -> Option<String>,
        on_secret: Option<api::SecretHook>,
    ) -> Result<Self, SessionError> {
        Self::connect(Endpoint::resolve(options, job, env)?, on_secret).await
    }

    /// Starts the sandbox if asked, builds the client and checks the credentials, so that
    /// refused credentials stop everything before a report is created or a file written.
    /// `on_secret` is told of every credential the client derives or fetches (the Basic value,
    /// each token) before anything could print it: GitHub Actions masks them.
    pub(crate) async fn connect(
        endpoint: Endpoint,
        on_secret: Option<api::SecretHook>,
    ) -> Result<Self, SessionError> {
        let (sandbox, target) = match endpoint {
            Endpoint::Sandbox(scenario) => {
                let sandbox = simulator::start(scenario.as_deref(), 0).await?;
                tracing::info!("using the built-in sandbox at {}", sandbox.base_url());
                let target = Target {
                    base_url: sandbox.base_url(),
                    credentials: Credentials::Client {
                        id: sandbox.client_id().to_owned(),
                        secret: Secret::new(sandbox.client_secret()),
                    },
                };
                (Some(sandbox), target)
            }
            Endpoint::Api(target) => (None, target),
        };
        let base = api::api_base(&target.base_url)?;
        let mut client = Client::new(base, target.credentials, ClientOptions::default())?;
        if let Some(hook) = on_secret {
            for secret in client.derived_secrets() {
                hook(&secret);
            }
            client = client.on_new_secret(hook);
        }
        client.authenticate().await?;
        let base_url = api::canonical_base(client.base_url());
        Ok(Self {
            client: Arc::new(client),
            sandbox,
            base_url,
        })
    }

    /// Stops the sandbox, if this connection started one.
    pub async fn close(self) {
        if let Some(sandbox) = self.sandbox {
            sandbox.shutdown().await;
        }
    }

    /// The job's full plan, with `children_of` entries expanded through the API.
    pub async fn full_plan(&self, job: &Job) -> Result<(Plan, Vec<DiscoveryRecord>), SessionError> {
        if job.discoveries.is_empty() {
            return Ok((plan::build(job), Vec::new()));
        }
        let expansion = discover::expand(&self.client, job).await?;
        for record in &expansion.records {
            let included = record.tenants.iter().filter(|t| t.included).count();
            tracing::info!(
                "children of {}: {included} of {} listed tenant(s) in scope",
                record.children_of,
                record.tenants.len()
            );
        }
        Ok((plan::build_for(job, &expansion.tenants), expansion.records))
    }
}
