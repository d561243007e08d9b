use crate::api::Credentials;
use crate::job::Job;
use crate::secret::Secret;

use super::SessionError;

/// Where the API is and who we are.
#[derive(Debug)]
pub(crate) struct Target {
    pub(crate) base_url: String,
    pub(crate) credentials: Credentials,
}

impl Target {
    /// From the flag, then the environment (`env` looks a variable up), then the job file; the
    /// credentials from the environment alone. Errors say what to set.
    pub(crate) fn resolve(
        base_url_flag: Option<&str>,
        job: &Job,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, SessionError> {
        let value = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let base_url = base_url_flag
            .map(str::to_owned)
            .or_else(|| value("ACRONIS_BASE_URL"))
            .or_else(|| job.base_url.clone())
            .ok_or(SessionError::NoBaseUrl)?;
        let credentials = match (
            value("ACRONIS_CLIENT_ID"),
            value("ACRONIS_CLIENT_SECRET").map(Secret::new),
            value("ACRONIS_TOKEN").map(Secret::new),
        ) {
            (Some(id), Some(secret), _) => Credentials::Client { id, secret },
            (Some(_), None, None) => {
                return Err(SessionError::HalfCredentials {
                    set: "ACRONIS_CLIENT_ID",
                    missing: "ACRONIS_CLIENT_SECRET",
                });
            }
            (None, Some(_), None) => {
                return Err(SessionError::HalfCredentials {
                    set: "ACRONIS_CLIENT_SECRET",
                    missing: "ACRONIS_CLIENT_ID",
                });
            }
            (_, _, Some(token)) => Credentials::Token(token),
            (None, None, None) => return Err(SessionError::NoCredentials),
        };
        Ok(Self {
            base_url,
            credentials,
        })
    }
}
